"""Candidates of a budget search: a point of the recipe's search space, what it costs on the device
before any training, and the ordinary recipe that trains it.

A candidate replaces the searched model's architecture (the student when the recipe distills, the
teacher otherwise), the input size, the channel-pruning target, TF-MOT's sparsity and clusters
when the space lists them, and the quantization mode; every other setting is the recipe's. Its
cost comes from converting the untrained model: latency and size do not depend on the weights, and
the gzip size depends on how many zeros and shared values TF-MOT's stages will leave, which are put
into the untrained kernels; so a candidate outside the budget is never trained.

Example::

    candidate = Candidate("minimal", "mobilenet_v2", 0.5, 32, (192, 256), 1.0, "int8")
    costs = untrained_costs(recipe, candidate, recipe.budget, latency_reference(recipe, recipe.budget))
    over = budget_violations(costs, recipe.budget)
    trial = candidate_recipe(recipe, candidate, "camvid_search-trial-004", epochs=6)
"""

from dataclasses import asdict, dataclass

from edgeseg.errors import EdgesegError
from edgeseg.files import content_sizes
from edgeseg.recipe import MODEL_CHANGING_STAGES, BudgetConfig, ModelSpec, Recipe, parse_recipe

CALIBRATION_IMAGES = 8
LATENCY_RUNS = 50


class CandidateObstacle(Exception):
    """Why a candidate cannot be built (e.g. a channel target out of reach): the trial is pruned."""


@dataclass(frozen=True)
class Candidate:
    """One point of the search space."""

    arch: str
    backbone: str
    alpha: float
    output_stride: int
    input_size: tuple[int, int]
    channel_keep: float
    quantize: str
    # TF-MOT's sparsity and weight clusters when the space searches them (0: none); None: the recipe's own.
    sparsity: float | None = None
    clusters: int | None = None

    @property
    def label(self) -> str:
        """e.g. `minimal mobilenet_v2 a0.5 os32 256x192 int8` (input width x height, as `check` prints sizes;
        and `channels 0.6`, `sparsity 0.5`, `clusters 16` when set)."""
        pruned = f" channels {self.channel_keep:g}" if self.channel_keep < 1 else ""
        sparse = f" sparsity {self.sparsity:g}" if self.sparsity else ""
        clustered = f" clusters {self.clusters}" if self.clusters else ""
        return (
            f"{self.arch} {self.backbone} a{self.alpha:g} os{self.output_stride} {self.input_size[1]}x{self.input_size[0]}"
            f"{pruned}{sparse}{clustered} {self.quantize}"
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "input_size": list(self.input_size)}

    @classmethod
    def from_dict(cls, fields: dict) -> "Candidate":
        """The candidate `as_dict` wrote (a trial's record)."""
        return cls(**{**fields, "input_size": tuple(fields["input_size"])})


def size_text(size) -> str:
    """An input size [height, width] as a trial parameter: `HxW`."""
    height, width = size
    return f"{height}x{width}"


def space_choices(recipe: Recipe) -> dict[str, list]:
    """The recipe's search space as Optuna's categorical choices, by parameter name (input sizes as
    `HxW` text), in the order trials suggest them."""
    space = recipe.search.space if recipe.search is not None else None
    if space is None:
        raise EdgesegError("search: the recipe has no 'search:' section naming the space to explore")
    sizes = [tuple(size) for size in space.input_size] or [tuple(recipe.data.input_size)]
    choices: dict[str, list] = {
        "input_size": [size_text(size) for size in sizes],
        "arch": list(space.arch),
        "backbone": list(space.backbone),
        "alpha": list(space.alpha),
        "output_stride": list(space.output_stride),
        "channel_keep": list(space.channel_keep),
        "quantize": list(space.quantize),
    }
    # Only when listed: a space without them keeps the parameters (and studies) it had before.
    choices.update({name: list(getattr(space, name)) for name in ("sparsity", "clusters") if getattr(space, name)})
    return choices


def candidate_from_params(params: dict) -> Candidate:
    """The candidate a trial's parameters (`space_choices`' names) describe."""
    height, width = (int(side) for side in params["input_size"].split("x"))
    return Candidate.from_dict({**params, "input_size": (height, width)})


def sample_candidate(trial, recipe: Recipe) -> Candidate:
    """The candidate an Optuna trial suggests from the recipe's search space (categorical choices)."""
    choices = space_choices(recipe)
    return candidate_from_params({name: trial.suggest_categorical(name, values) for name, values in choices.items()})


def recipe_candidate(recipe: Recipe) -> Candidate:
    """The recipe's own model as a candidate: its searched model at the data's input size, no
    channels removed, its quantize mode (`auto` starts from int8, so int8), and where the space
    searches them its prune stage's sparsity and cluster stage's clusters (0 without the stage)."""
    spec = getattr(recipe, searched_role(recipe))
    height, width = recipe.data.input_size
    stages = dict(recipe.stage_items())
    mode = getattr(stages.get("quantize"), "mode", "int8")
    space = recipe.search.space if recipe.search is not None else None
    return Candidate(
        spec.arch,
        spec.backbone,
        spec.alpha,
        spec.output_stride,
        (height, width),
        1.0,
        "int8" if mode == "auto" else mode,
        sparsity=getattr(stages.get("prune"), "target_sparsity", 0.0) if space is not None and space.sparsity else None,
        clusters=getattr(stages.get("cluster"), "clusters", 0) if space is not None and space.clusters else None,
    )


def recipe_params(recipe: Recipe) -> dict | None:
    """The recipe's own model (`recipe_candidate`) as trial parameters of its search space; None when
    the space does not hold that point (a minimalistic MobileNetV3 is never one). A search starts
    from it, so the model a user would train by hand is measured on the same terms as every candidate."""
    own = recipe_candidate(recipe)
    fields = {**asdict(own), "input_size": size_text(own.input_size)}
    choices = space_choices(recipe)
    params = {name: fields[name] for name in choices}
    minimalistic = getattr(recipe, searched_role(recipe)).minimalistic
    return None if minimalistic or any(params[name] not in choices[name] for name in params) else params


def searched_role(recipe: Recipe) -> str:
    """The recipe section the search rebuilds: the student when the recipe distills, else the teacher."""
    names = [name for name, _ in recipe.stage_sections()]
    role = "student" if "distill" in names else "teacher"
    spec = getattr(recipe, role)
    if spec is None or spec.arch is None:
        raise EdgesegError(f"search: {role} must be a zoo model (arch), which the search can rebuild. Received: {role}.path")
    return role


def candidate_recipe(recipe: Recipe, candidate: Candidate, name: str, epochs: int | None) -> Recipe:
    """An ordinary recipe that trains `candidate`, named `name`: the searched model's training stages
    at `epochs` epochs (None: the recipe's own), a `prune_channels` stage keeping `channel_keep` of
    the MACs when below 1 (before TF-MOT's prune and cluster, fine-tuned half as many epochs, with
    the recipe's own prune_channels stage's other settings, importance and guidance among them, or
    else the defaults guided by the teacher; the recipe's own stage is not run), TF-MOT prune and
    cluster stages at the candidate's sparsity and clusters when it sets them (the recipe's own
    settings otherwise; 0: no such stage), the candidate's quantization mode, and no verify gates,
    since the search judges the budget itself.
    Stages that train the teacher before a distill stage keep their epochs: every candidate shares
    them, so they train once."""
    role = searched_role(recipe)
    dumped = recipe.model_dump(mode="json", exclude={"search", "budget"})
    dumped["name"] = name
    dumped["data"]["input_size"] = list(candidate.input_size)
    dumped[role] = {
        **dumped[role],
        "arch": candidate.arch,
        "backbone": candidate.backbone,
        "alpha": candidate.alpha,
        "output_stride": candidate.output_stride,
        "minimalistic": False,
        "weights": None,
    }
    # The stages that act on the searched model: all of them when it is the teacher, else from distill on.
    entries = [next(iter(entry.items())) for entry in dumped["stages"]]
    first_searched = 0 if role == "teacher" else next(i for i, (stage, _) in enumerate(entries) if stage == "distill")
    own_searched = dict(entries[first_searched:])
    # TF-MOT stages the candidate sets (sparsity, clusters searched) replace the recipe's own:
    # stage -> (its setting, the candidate's value; 0: no such stage).
    candidate_settings = (("prune", "target_sparsity", candidate.sparsity), ("cluster", "clusters", candidate.clusters))
    searched_compression = {stage: (setting, value) for stage, setting, value in candidate_settings if value is not None}
    # The recipe's prune_channels stage lends a pruned candidate its settings; without one, the
    # defaults, guided by the teacher (or the unpruned model).
    own_channel_pruning = own_searched.get("prune_channels", {"distill": {}})
    stages, searched_epochs, compressed = [], epochs or 1, False

    def schedule(settings: dict, stage_epochs: int | None = epochs) -> dict:
        """A stage that changes the searched model, at `stage_epochs` (None: as the recipe says); a
        proxy training is stopped early by the search's pruner, not by the stage."""
        if stage_epochs is None:
            return settings
        warmup = min(settings.get("warmup_epochs", 0), stage_epochs - 1)
        settings = {**settings, "epochs": stage_epochs, "warmup_epochs": warmup}
        if epochs is not None:
            settings.pop("early_stopping", None)
        return settings

    for index, (stage, settings) in enumerate(entries):
        searched = index >= first_searched
        if searched and (stage == "prune_channels" or stage in searched_compression):
            continue
        if searched and stage in MODEL_CHANGING_STAGES:
            settings = schedule(settings)
        if searched and stage in ("train", "distill"):
            searched_epochs = settings["epochs"]
        if stage == "quantize":
            # The candidate's mode replaces the recipe's; options of other modes go with it.
            dropped = ("max_miou_drop",) if candidate.quantize == "int8" else ("max_miou_drop", "qat", "output_type")
            settings = {**{k: v for k, v in settings.items() if k not in dropped}, "mode": candidate.quantize}
        if stage == "verify":
            settings = {
                key: value
                for key, value in settings.items()
                if key not in ("min_miou", "max_miou_drop", "max_class_iou_drop", "max_latency_ms", "max_size_kb")
            }
        if searched and not compressed and stage in ("prune", "cluster", "quantize"):
            compressed = True
            if candidate.channel_keep < 1:
                # Fine-tuned for half the searched model's training (proxy or full, as the candidate is),
                # at least an epoch per round; the recipe's measure command times a latency target only.
                pruning_epochs = max(1, searched_epochs // 2)
                steps = min(own_channel_pruning.get("steps", 1), pruning_epochs)
                pruning = {**own_channel_pruning, "target": "macs", "keep": candidate.channel_keep, "steps": steps}
                pruning.pop("measure_command", None)
                stages.append({"prune_channels": schedule(pruning, pruning_epochs)})
            for compression, (setting, value) in searched_compression.items():
                if value:
                    stages.append({compression: schedule({**own_searched.get(compression, {}), setting: value})})
        stages.append({stage: settings})
    dumped["stages"] = stages
    return parse_recipe(dumped, source=f"search candidate {candidate.label}")


@dataclass(frozen=True)
class LatencyReference:
    """The recipe's own model, untrained (`latency_reference`), which every latency of a search is
    measured against. On this machine each file is timed alternately with it in one process and
    scaled to its first timing, so load that comes and goes during an hour of training moves the
    file and the reference alike and leaves the scale alone (the absolute figures carry the error
    of that one first timing; the ratios do not). `budget.latency_vs_recipe` limits the ratio."""

    tflite: bytes
    latency_ms: float
    label: str


REFERENCE_NAME = "the recipe's own model, untrained"


def latency_reference(recipe: Recipe, budget: BudgetConfig, latency_ms: float | None = None) -> LatencyReference:
    """The recipe's own model, untrained, in its quantize mode, timed now by the interpreter at the
    budget's threads or by its measure command, unless `latency_ms` (an earlier run's timing of the
    same file, for a resumed search) is given."""
    from edgeseg.tflite import TFLiteSegmenter

    own = recipe_candidate(recipe)
    _, tflite = untrained_tflite(recipe, own, getattr(recipe, searched_role(recipe)).minimalistic)
    if latency_ms is None and budget.measure_command is not None:
        from edgeseg.measure import command_latency_ms

        latency_ms = command_latency_ms(tflite, budget.measure_command, "budget.measure_command")
    elif latency_ms is None:
        latency_ms = TFLiteSegmenter(tflite, threads=budget.threads).latency_ms(runs=LATENCY_RUNS)["median_ms"]
    return LatencyReference(tflite, latency_ms, own.label)


def untrained_tflite(recipe: Recipe, candidate: Candidate, minimalistic: bool = False):
    """The candidate's untrained Keras model and its file in the candidate's quantization mode, its
    kernels sparsified and clustered as the candidate's prune and cluster stages will leave them
    (`compressed_like_training`); CandidateObstacle when its channel target is out of reach. `minimalistic`: the recipe's own
    MobileNetV3 variant, which candidates are not."""
    from edgeseg.measure import compressed_like_training, random_calibration, untrained_model
    from edgeseg.quantization.converters import convert

    spec = ModelSpec(
        arch=candidate.arch,
        backbone=candidate.backbone,
        alpha=candidate.alpha,
        output_stride=candidate.output_stride,
        minimalistic=minimalistic,
    )
    trained_as = dict(candidate_recipe(recipe, candidate, "costs", epochs=None).stage_items())
    pruning = trained_as.get("prune_channels") if candidate.channel_keep < 1 else None
    # Its channels removed with the settings it will train with, on l1 importance (`untrained_model`).
    plan_settings = (
        {
            "macs_kept": candidate.channel_keep,
            **pruning.model_dump(include={"keep_layers", "allocation", "round_to", "min_channels", "cost_weighted"}),
        }
        if pruning is not None
        else {}
    )
    try:
        model = untrained_model(spec, candidate.input_size, len(recipe.data.classes), recipe.seed, **plan_settings)
    except ValueError as error:
        raise CandidateObstacle(f"channel_keep {candidate.channel_keep:g}: {error}") from None
    # The TF-MOT stages the candidate will train with leave zeros and shared values, which gzip.
    prune, cluster = trained_as.get("prune"), trained_as.get("cluster")
    converted = model
    if prune is not None or cluster is not None:
        sparsity, clusters = getattr(prune, "target_sparsity", 0.0), getattr(cluster, "clusters", 0)
        converted = compressed_like_training(model, len(recipe.data.classes), sparsity, clusters, prune, cluster)
    calibration = random_calibration(candidate.input_size, recipe.seed, CALIBRATION_IMAGES)
    return model, convert(converted, candidate.quantize, calibration)


def untrained_costs(recipe: Recipe, candidate: Candidate, budget: BudgetConfig, reference: LatencyReference) -> dict:
    """What the candidate costs on the device, from its untrained model: MACs, parameters, file size
    raw and gzip (in its quantization mode), median latency at the budget's threads (by the budget's
    measure command, or else the interpreter here beside `reference`) in ms and as a multiple of the
    reference's, and the interpreter's resident memory when the budget limits it."""
    from edgeseg.profile import profile_model
    from edgeseg.tflite import TFLiteSegmenter, interpreter_memory_kib

    model, tflite = untrained_tflite(recipe, candidate)
    profile = profile_model(model)
    TFLiteSegmenter(tflite)  # the file must run in the interpreter, or the candidate is no candidate
    costs = {
        "role": searched_role(recipe),
        "macs": profile["macs"],
        "params": profile["params"],
        **content_sizes(tflite),
        **latency_costs(latencies_together({"candidate": tflite}, budget, reference)[0]["candidate"], reference),
    }
    if budget.peak_memory_kb is not None:
        costs["memory_kib"] = interpreter_memory_kib(tflite)
    return costs


def latency_costs(latency_ms: float, reference: LatencyReference) -> dict:
    """A file's latency in ms and as a multiple of the reference's."""
    return {"latency_ms": latency_ms, "latency_vs_recipe": latency_ms / reference.latency_ms}


def latencies_together(
    models: dict[str, bytes], budget: BudgetConfig, reference: LatencyReference
) -> tuple[dict[str, float], str]:
    """Median latency in ms of each file at the budget's threads, and how it was measured: one by one
    by the budget's measure command, or by the interpreter here, the files timed alternately in one
    process with the reference and scaled to its first timing."""
    if budget.measure_command is not None:
        from edgeseg.measure import command_latency_ms

        command = budget.measure_command
        on_device = {name: command_latency_ms(content, command, "budget.measure_command") for name, content in models.items()}
        return on_device, "the budget's measure command"
    from edgeseg.tflite import alternating_latency

    if REFERENCE_NAME in models:
        raise ValueError(f"a file to time is named {REFERENCE_NAME!r}, the reference's name")
    key = str(budget.threads)
    timed = alternating_latency({**models, REFERENCE_NAME: reference.tflite}, threads=(budget.threads,))
    factor = reference.latency_ms / timed[REFERENCE_NAME][key]
    return {name: timed[name][key] * factor for name in models}, (
        f"the LiteRT interpreter on this machine, {budget.threads} threads, the files timed alternately in one process "
        f"with {REFERENCE_NAME} and scaled to its {reference.latency_ms:.2f} ms"
    )


def budget_violations(costs: dict, budget: BudgetConfig) -> list[str]:
    """One phrase per limit the costs exceed, e.g. "latency 2.41 ms > 2.0"."""
    limits = [
        ("latency", costs["latency_ms"], budget.latency_ms, "ms"),
        ("latency_vs_recipe", costs.get("latency_vs_recipe"), budget.latency_vs_recipe, ""),
        ("size", costs["bytes"] / 1024, budget.size_kb, "KiB"),
        ("gzip", costs["gzip_bytes"] / 1024, budget.gzip_kb, "KiB"),
        ("MACs", costs["macs"], budget.macs, ""),
        ("memory", costs.get("memory_kib"), budget.peak_memory_kb, "KiB"),
    ]
    return [
        f"{what} {value:,.2f}{unit and ' ' + unit} > {limit:g}"
        for what, value, limit, unit in limits
        if limit is not None and value is not None and value > limit
    ]


def stride_obstacle(candidate: Candidate) -> str | None:
    """Why the candidate cannot be built, or None: input sides must be multiples of its output stride."""
    height, width = candidate.input_size
    if height % candidate.output_stride or width % candidate.output_stride:
        return f"input_size [{height}, {width}] is not a multiple of output stride {candidate.output_stride}"
    return None
