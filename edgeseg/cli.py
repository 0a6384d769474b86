"""`python -m edgeseg COMMAND`: each command is one call into the library; no logic lives here."""

import json
import logging
import os
import sys

import fire

from edgeseg.errors import EdgesegError

log = logging.getLogger("edgeseg")


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

        result = edgeseg.run(edgeseg.load_recipe(str(recipe)), runs_dir=str(runs_dir), resume=bool(resume))
        for line in result.summary_lines():
            print(line)

    def check(self, recipe: str):
        """Validates RECIPE (keys, types, paths, stage order) without running anything."""
        from edgeseg.recipe import load_recipe

        loaded = load_recipe(str(recipe))
        stages = " -> ".join(name for name, _ in loaded.stage_items())
        print(f"{recipe}: ok: '{loaded.name}', {loaded.data.format} data, {len(loaded.data.classes)} classes, {stages}")

    def eval(self, model: str, data: str, split: str = "val", threads: int = 2, json_output: bool = False):
        """Scores MODEL (.tflite, .keras, .h5, SavedModel) on DATA (a recipe .yaml, a dataset folder or 'synthetic')."""
        import edgeseg

        scores = edgeseg.evaluate(str(model), str(data), split=str(split), threads=threads)
        if json_output:
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

    def profile(self, model: str, top: int = 15, json_output: bool = False):
        """Where MODEL spends its compute. For .keras/.h5/SavedModel: params and MACs per layer, the
        TOP costliest first; for a .tflite: its ops with dtypes, size and measured latency."""
        from edgeseg.profile import profile_file, profile_lines

        found = profile_file(str(model), top=int(top))
        print(json.dumps(found, indent=2) if json_output else "\n".join(profile_lines(found)))

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
        if web:
            from edgeseg.demo.web import serve

            if not str(port).isdigit() or not 0 <= int(port) <= 65535:
                raise EdgesegError(f"demo: --port takes 0 to 65535. Received: port={port}")
            serve(str(export), host=str(host), port=int(port))
            return
        from edgeseg.demo.desktop import run_demo

        stats = run_demo(
            str(export),
            source=str(source),
            save=None if save is None else str(save),
            window=not no_window,
            threads=int(threads),
            max_frames=max_frames,
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
    try:
        fire.Fire(Commands(), command=argv, name="edgeseg")
    except EdgesegError as error:
        for line in str(error).splitlines():
            print(f"edgeseg: error: {line}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("edgeseg: interrupted; the folders of completed stages are kept", file=sys.stderr)
        return 130
    except fire.core.FireExit as exit_:
        return exit_.code
    except BrokenPipeError:  # e.g. `edgeseg schema | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - open until exit, as stdout was
        return 0
    return 0


def main_exit() -> None:
    """Console-script entry point (`edgeseg ...`)."""
    sys.exit(main())
