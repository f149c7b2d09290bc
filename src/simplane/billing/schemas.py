from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

# Money travels as a decimal string ("12.34"), never a float.
MoneyText = str


class TariffOut(BaseModel):
    currency: str
    monthly_fee: MoneyText
    price_per_mb: MoneyText
    price_per_sms_mt: MoneyText
    price_per_sms_mo: MoneyText
    effective_from: str


class CurrentTariff(TariffOut):
    next: TariffOut | None = None


class Totals(BaseModel):
    things_charged: int
    monthly_fees: MoneyText
    data_bytes: int
    data_charges: MoneyText
    sms_mt: int
    sms_mo: int
    sms_charges: MoneyText
    total: MoneyText


class LineOut(BaseModel):
    thing_id: str
    iccid: str
    things_group_id: str
    monthly_fee: MoneyText
    data_bytes: int
    data_charge: MoneyText
    sms_mt: int
    sms_mo: int
    sms_charge: MoneyText
    total: MoneyText


class LinePage(BaseModel):
    items: list[LineOut]
    next_cursor: str | None


class ReportOut(BaseModel):
    period: str
    start: datetime
    end: datetime
    status: Literal["OPEN", "CLOSED"]
    currency: str
    totals: Totals
    lines: LinePage
