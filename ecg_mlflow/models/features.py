"""Models on the context numbers alone, no beat samples: the baseline every patient-wise table measures
the deep models against.

Why it is in the code: an exploratory logistic regression on the 13 `rr_template` numbers did
better on DS2 than every deep model (docs/results.md). A deep model earns its place only by
beating this baseline, measured the same way: the same runs, folds, metrics, `evaluate`, serving
and tables. Each kind is declared once in FEATURE_MODELS; the `features` step, its config
choices and the CLI read that table, like the backbone catalog for networks. No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sklearn.base import ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ecg_mlflow.checks import declare

# (class_weight "none" | "balanced", seed) -> an unfitted scikit-learn classifier with predict_proba
Builder = Callable[[str, int], ClassifierMixin]


@dataclass(frozen=True)
class FeatureModel:
    """One kind of features model: its name (the `estimator` choice), what it is, how to build it."""

    name: str
    description: str
    build: Builder


FEATURE_MODELS: dict[str, FeatureModel] = {}


def register_feature_model(model: FeatureModel) -> FeatureModel:
    """Add one to the table every other place reads; a name may be declared once."""
    return declare(FEATURE_MODELS, model, "features model")


def _weights(class_weight: str) -> str | None:
    return None if class_weight == "none" else class_weight


def logistic_regression(class_weight: str, seed: int) -> ClassifierMixin:
    """Standardised numbers, multinomial logistic regression: a linear discriminant, as de Chazal's (2004)."""
    return make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=2000, class_weight=_weights(class_weight), random_state=seed)
    )


def gradient_boosting(class_weight: str, seed: int) -> ClassifierMixin:
    """Histogram gradient-boosted trees: non-linear interactions of the numbers, no scaling needed."""
    return HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.1, class_weight=_weights(class_weight), early_stopping=False, random_state=seed
    )


register_feature_model(FeatureModel("logistic", "logistic regression on the standardised numbers", logistic_regression))
register_feature_model(FeatureModel("boosting", "histogram gradient-boosted trees", gradient_boosting))


def build_features_model(name: str, class_weight: str, seed: int) -> ClassifierMixin:
    """An unfitted features model of kind `name`."""
    return FEATURE_MODELS[name].build(class_weight, seed)
