"""The declarative definition of a selection challenge: its tasks' budget, classes, formats,
metric and frozen model, checked as a whole."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataperf.kinds._common import BootstrapSpec, KindSpec
from dataperf.learners.frozen import FROZEN_MODELS


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "logistic_regression"
    params: dict[str, Any] = {}

    @field_validator("name")
    @classmethod
    def _known_model(cls, name: str) -> str:
        if name not in FROZEN_MODELS:
            raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(FROZEN_MODELS))}")
        return name


class SelectionSpec(KindSpec):
    """The declarative definition of a selection challenge (YAML or JSON)."""

    kind: Literal["selection"] = "selection"
    classes: list[str] = Field(default=["0", "1"], min_length=1)
    budget: int = Field(ge=2, le=1_000_000)
    task_budgets: dict[str, int] = Field(default_factory=dict)
    metric: Literal["f1", "macro_f1", "accuracy"] = "f1"
    scale: float = Field(default=100.0, gt=0)
    model: ModelSpec = ModelSpec()
    seeds: list[int] = Field(default=[0], min_length=1)
    id_column: str = "ImageID"
    label_column: str = "Confidence"
    formats: list[Literal["csv", "json", "keywords"]] = Field(default=["csv", "json"],
                                                              min_length=1)
    bootstrap: BootstrapSpec = BootstrapSpec()

    @model_validator(mode="after")
    def _consistent(self) -> SelectionSpec:
        if self.keywords:
            if self.formats != ["keywords"] or len(self.classes) != 1:
                raise ValueError("the keywords format comes alone, with one class: the name of "
                                 "the background class (e.g. classes: [nontarget]); the other "
                                 "classes are each task's keywords")
            if self.metric == "f1":
                raise ValueError("keyword tasks have several classes; use metric 'macro_f1'")
        elif len(self.classes) < 2:
            raise ValueError("classes needs at least two entries")
        if self.metric == "f1" and len(self.classes) != 2:
            raise ValueError("metric 'f1' is binary F1 of classes[1]; use 'macro_f1' for more "
                             "than two classes")
        small = {t: b for t, b in self.task_budgets.items() if not 1 <= b <= 1_000_000}
        if small:
            raise ValueError(f"task budgets must lie between 1 and 1,000,000: {small}")
        return self

    @property
    def keywords(self) -> bool:
        """True for keyword-spotting tasks: each task's candidates come with the word they were
        cut for (public/candidates.parquet), and submissions list chosen IDs under those words."""
        return "keywords" in self.formats

    def budget_of(self, task: str) -> int:
        """The most rows a submission may choose for ``task``."""
        return self.task_budgets.get(task, self.budget)
