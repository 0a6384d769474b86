"""The recipe: one YAML file that drives one run, validated completely before anything runs.

Where each part lives:
    base.py      what every section shares (strict keys, paths resolved against the recipe's folder)
    data.py      `data:`
    models.py    `teacher:` and `student:`
    stages.py    one section per stage, `distribute:`, and the settings stages inherit
    search.py    `budget:` and `search:`, what `edgeseg search` meets and explores
    root.py      the whole recipe: rules spanning sections, inherited values resolved at load time
    messages.py  pydantic errors turned into one line per problem, naming the YAML key
    loading.py   `load_recipe`, `parse_recipe`, `parse_data`, the JSON Schema

Example:
    >>> recipe = load_recipe("recipes/quickstart.yaml")
    >>> [name for name, _ in recipe.stage_items()]
    ['train', 'distill', 'prune', 'cluster', 'quantize', 'verify', 'export']
"""

from edgeseg.recipe.data import INPUT_SIDE_MULTIPLE, AugmentConfig, DataConfig, FolderData, SyntheticData
from edgeseg.recipe.loading import load_recipe, parse_data, parse_recipe, recipe_json_schema
from edgeseg.recipe.models import Arch, Backbone, ModelSpec, model_from_name, split_input_size
from edgeseg.recipe.root import Recipe
from edgeseg.recipe.search import BudgetConfig, SearchConfig, SearchSpace
from edgeseg.recipe.stages import (
    MODEL_CHANGING_STAGES,
    STAGE_CONFIGS,
    STAGE_SETTINGS,
    TFLITE_READING_STAGES,
    ClusterConfig,
    DistillConfig,
    DistributeConfig,
    ExportConfig,
    FitConfig,
    LayerSelection,
    LogitDistillation,
    PruneConfig,
    QatConfig,
    QuantizeConfig,
    QuantizeSettings,
    TrainConfig,
    VerifyConfig,
    VerifySettings,
)

__all__ = [
    "INPUT_SIDE_MULTIPLE",
    "AugmentConfig",
    "DataConfig",
    "FolderData",
    "SyntheticData",
    "load_recipe",
    "parse_data",
    "parse_recipe",
    "recipe_json_schema",
    "Arch",
    "Backbone",
    "ModelSpec",
    "model_from_name",
    "split_input_size",
    "BudgetConfig",
    "SearchConfig",
    "SearchSpace",
    "Recipe",
    "MODEL_CHANGING_STAGES",
    "STAGE_CONFIGS",
    "STAGE_SETTINGS",
    "TFLITE_READING_STAGES",
    "ClusterConfig",
    "DistillConfig",
    "DistributeConfig",
    "ExportConfig",
    "FitConfig",
    "LayerSelection",
    "LogitDistillation",
    "PruneConfig",
    "QatConfig",
    "QuantizeConfig",
    "QuantizeSettings",
    "TrainConfig",
    "VerifyConfig",
    "VerifySettings",
]
