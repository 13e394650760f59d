"""The declarative definition of an acquisition challenge: draws, seed, the weight of accuracy
against the budget saved, the frozen model and the submission formats."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dataperf.kinds._common import BootstrapSpec, KindSpec


class AcquisitionModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["logistic_regression"] = "logistic_regression"
    C: float = Field(default=1.0, gt=0)
    max_iter: int = Field(default=100, ge=1)


class AcquisitionSpec(KindSpec):
    """The declarative definition of an acquisition challenge (YAML or JSON)."""

    kind: Literal["acquisition"] = "acquisition"
    draws: int = Field(default=10, ge=1, le=1000)  # random row draws per market
    seed: int = Field(default=0, ge=0)
    # The weight of test accuracy in a market's score; the rest weighs the budget saved.
    accuracy_weight: float = Field(default=0.98, ge=0.0, le=1.0)
    model: AcquisitionModelSpec = AcquisitionModelSpec()
    formats: list[Literal["txt", "csv"]] = Field(default=["txt", "csv"], min_length=1)
    bootstrap: BootstrapSpec = BootstrapSpec()

    @model_validator(mode="after")
    def _consistent(self) -> AcquisitionSpec:
        if len(set(self.formats)) != len(self.formats):
            raise ValueError("formats must be unique")
        return self
