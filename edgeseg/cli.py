"""`python -m edgeseg COMMAND`: each command is one call into the library; no logic lives here."""

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import fire

from edgeseg.errors import EdgesegError

log = logging.getLogger("edgeseg")


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the run's report says what completed, and the exit code says why."""


def whole_number(command: str, option: str, value, minimum: int = 1, maximum: int | None = None) -> int:
    """A command-line value that must be a whole number in range, or one line naming the option."""
    within = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    if not within or (maximum is not None and value > maximum):
        bound = f"{minimum} to {maximum}" if maximum is not None else f"a whole number >= {minimum}"
        raise EdgesegError(f"{command}: --{option} takes {bound}. Received: {option}={value!r}")
    return value


def printable(line: str) -> str:
    """`line` with control characters escaped (\\x00, \\x1b, ...): a value from a recipe or a file
    name cannot cut the line, ring the terminal or color it.

    Example:
        >>> printable("tag 'fol\\x00der\\x1b[31m'")
        "tag 'fol\\\\x00der\\\\x1b[31m'"
    """
    return "".join(f"\\x{ord(char):02x}" if ord(char) < 32 or ord(char) == 127 else char for char in line)


def switch(command: str, option: str, value) -> bool:
    """A command-line switch: given alone, or set to true or false."""
    if not isinstance(value, bool):
        raise EdgesegError(f"{command}: --{option} is a switch: give it alone, or =true / =false. Received: {option}={value!r}")
    return value


class Commands:
    """edgeseg: Keras segmentation models to verified int8 .tflite files for phones."""

    def export(self, recipe: str, runs_dir: str = "runs", resume: bool = False):
        """Runs every stage of RECIPE into RUNS_DIR/<name>/ and prints where the model is.

        With --resume, stages a previous run of the same recipe completed are reused, and a training
        stage stopped mid-way continues from its last completed epoch; editing stage k reruns from k.

        Exit codes: 0 done, 2 bad input (recipe, data, model), 3 a verification gate failed,
        4 a stage missed its target (e.g. sparsity), 1 a bug in edgeseg.
        """
        import edgeseg

        resume = switch("export", "resume", resume)
        result = edgeseg.run(edgeseg.load_recipe(str(recipe)), runs_dir=str(runs_dir), resume=resume)
        for line in result.summary_lines():
            print(line)

    def search(self, recipe: str, runs_dir: str = "runs", naive: str | tuple[str, ...] = ""):
        """Finds the best model of RECIPE's search space within its budget, and the Pareto frontier of
        int8 mIoU against latency and size: trials in RUNS_DIR/<name>-search/ (a killed search resumes),
        the chosen model exported there with search.md, search.json and frontier.png. NAIVE, a
        benchmark.json of the naive family (tools/benchmark.py --family) or several, comma-separated
        (`--naive a.json,b.json`), is drawn on the frontier, its int8 files timed again beside the
        finalists'.

        Exit codes: 0 done, 2 bad input, 4 no candidate meets the budget (the closest are named)."""
        from edgeseg.recipe import load_recipe
        from edgeseg.search.frontier import naive_points
        from edgeseg.search.study import run_search

        loaded = load_recipe(str(recipe))
        # Fire hands `a,b` over as a tuple when neither name looks like a path, else as one string.
        paths = naive.split(",") if isinstance(naive, str) else naive
        benchmarks: list[dict] = []
        family: list[dict] = []
        for path in filter(None, paths):
            try:
                benchmarks.append(json.loads(Path(str(path)).read_text()))
                family = naive_points(benchmarks)  # read now, not after hours of search; names the file at fault
            except (OSError, ValueError, KeyError, TypeError, AttributeError, StopIteration) as error:
                raise EdgesegError(
                    f"search: --naive: expected benchmark.json files (tools/benchmark.py) with naive arms and their "
                    f"int8 files. Received: {path} ({type(error).__name__}: {error})"
                ) from None
        result = run_search(loaded, str(runs_dir), naive=family)
        chosen = result["chosen"]
        print(
            f"chosen: {chosen['label']}: int8 val mIoU {chosen['int8_miou']:.4f}, {chosen['latency_ms']:.2f} ms, "
            f"{chosen['export_bytes'] / 1024:.1f} KiB exported"
        )
        print(f"search: {Path(str(runs_dir)) / (result['recipe'] + '-search')}/search.md")

    def check(self, recipe: str):
        """Validates RECIPE (keys, types, paths, stage order) and its data's files (every pair found,
        sizes read from the headers) without training anything."""
        from edgeseg.data.inspection import data_lines, inspect_data
        from edgeseg.recipe import load_recipe

        loaded = load_recipe(str(recipe))
        stages = " -> ".join(name for name, _ in loaded.stage_items())
        for line in data_lines(inspect_data(loaded.data)):
            log.info("%s", line)
        print(f"{recipe}: ok: '{loaded.name}', {loaded.data.format} data, {len(loaded.data.classes)} classes, {stages}")

    def data(self, recipe: str, out: str | None = None):
        """What RECIPE's data is before anyone trains on it: images per split, sizes, class pixel shares
        (and classes missing from a split), labels that will be resized, and a gallery of label
        overlays; written to OUT (default: runs/<name>-data/) as data.md, data.json and gallery.png."""
        from edgeseg.data.inspection import data_lines, write_data_report
        from edgeseg.recipe import load_recipe

        loaded = load_recipe(str(recipe))
        folder = Path(str(out)) if out is not None else Path("runs") / f"{loaded.name}-data"
        report = write_data_report(loaded.data, folder)
        print("\n".join(data_lines(report)))
        print(f"written to {folder}/data.md, data.json and gallery.png")

    def eval(
        self,
        model: str,
        data: str,
        split: str = "val",
        threads: int = 2,
        json_output: bool = False,
        trust_model_code: bool = False,
    ):
        """Scores MODEL (.tflite, .keras, .h5, SavedModel) on DATA (a recipe .yaml, a dataset folder or 'synthetic').

        --split train|val|NAME    a dataset folder's or recipe's split, or any folder <root>/NAME
                                  holding images/ and labels/ (a held-out test set)
        --trust_model_code        load a Keras file with Lambda layers (they run Python code)
        """
        import edgeseg

        scores = edgeseg.evaluate(
            str(model),
            str(data),
            split=str(split),
            threads=whole_number("eval", "threads", threads),
            trust_model_code=switch("eval", "trust_model_code", trust_model_code),
        )
        if switch("eval", "json_output", json_output):
            print(json.dumps(scores, indent=2))
            return
        boundary = scores["boundary_f1"]
        print(
            f"{scores['model']}: mIoU {scores['miou']:.4f} on {scores['images']} {split} images "
            f"(scored at {scores['resolution']} resolution), pixel accuracy {scores['pixel_accuracy']:.4f}, "
            f"boundary F1 {'n/a' if boundary is None else format(boundary, '.4f')}"
        )
        for name, iou in zip(scores["classes"], scores["per_class_iou"]):
            print(f"  {name:<16} IoU {'absent' if iou is None else format(iou, '.4f')}")

    def profile(self, model: str, top: int = 15, json_output: bool = False, trust_model_code: bool = False):
        """Where MODEL spends its compute. For .keras/.h5/SavedModel: params and MACs per layer, the
        TOP costliest first; for a .tflite: its ops with dtypes, size and measured latency.
        --trust_model_code loads a Keras file with Lambda layers (they run Python code)."""
        from edgeseg.profile import profile_file, profile_lines

        found = profile_file(
            str(model),
            top=whole_number("profile", "top", top),
            trust_model_code=switch("profile", "trust_model_code", trust_model_code),
        )
        print(json.dumps(found, indent=2) if switch("profile", "json_output", json_output) else "\n".join(profile_lines(found)))

    def demo(
        self,
        export: str,
        source: str = "0",
        save: str | None = None,
        no_window: bool = False,
        threads: int = 2,
        max_frames: int | None = None,
        web: bool = False,
        host: str = "127.0.0.1",
        port: int = 8000,
    ):
        """Runs EXPORT (a run folder or a .tflite with its edgeseg.json) live on a camera, video or images.

        --source 0|video.mp4|images/|synthetic   what to segment: a camera index, a video, a folder
                                       of images, or generated scenes like the quickstart's
        --save out.mp4|frames/         keep what is shown, as a video or as numbered PNG frames
        --no-window                    headless (with --save); keys in the window: o overlay, q quit
        --web                          serve the browser demo (LiteRT.js) on http://HOST:PORT instead
        """
        if switch("demo", "web", web):
            from edgeseg.demo.web import serve

            serve(str(export), host=str(host), port=whole_number("demo", "port", port, minimum=0, maximum=65535))
            return
        from edgeseg.demo.desktop import run_demo

        stats = run_demo(
            str(export),
            source=str(source),
            save=None if save is None else str(save),
            window=not switch("demo", "no_window", no_window),
            threads=whole_number("demo", "threads", threads),
            max_frames=None if max_frames is None else whole_number("demo", "max_frames", max_frames),
        )
        print(
            f"demo: {stats.frames} frames, interpreter {stats.mean_inference_ms:.2f} ms/frame, "
            f"{stats.fps:.1f} FPS overall" + (f"; saved to {save}" if save is not None else "")
        )

    def schema(self):
        """Prints the recipe JSON Schema, for editors' completion and validation."""
        from edgeseg.recipe import recipe_json_schema

        print(json.dumps(recipe_json_schema(), indent=2))


def main(argv=None) -> int:
    """Entry point; returns the process exit code."""
    # edgeseg's own lines only: libraries' log records (TF-MOT's notes on which QAT scheme applies
    # to a layer, absl's) stay out unless they are errors.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("edgeseg: %(message)s"))
    log.handlers[:] = [handler]  # one, however often main runs in a process
    log.setLevel(logging.INFO)
    log.propagate = False
    logging.getLogger().setLevel(logging.ERROR)
    # SIGTERM ends a run like Ctrl-C (a report says what completed); only the main thread may set it.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_handler = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        fire.Fire(Commands(), command=argv, name="edgeseg")
    except EdgesegError as error:
        for line in str(error).splitlines():
            print(f"edgeseg: error: {printable(line)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt as interruption:
        terminated = isinstance(interruption, Terminated)
        print(
            f"edgeseg: {'terminated' if terminated else 'interrupted'}; the folders of completed stages are kept", file=sys.stderr
        )
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
    except fire.core.FireExit as exit_:
        return exit_.code
    except BrokenPipeError:  # e.g. `edgeseg schema | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - open until exit, as stdout was
        return 0
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_handler)
    return 0


def _raise_terminated(signum, frame):
    raise Terminated()


def main_exit() -> None:
    """Console-script entry point (`edgeseg ...`)."""
    sys.exit(main())
