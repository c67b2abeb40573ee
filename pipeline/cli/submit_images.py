"""`pipeline submit images SOURCES...`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipeline.cli.context import CliContext
from pipeline.cli.submitting import follow_options, output_options, run, spec_option
from pipeline.core.ops import valid_ops_help
from pipeline.kinds.images import ImageOptions, ImagesSpec

OPS_HELP = (
    "Comma-separated chain NAME[:ARGS], applied in order; `exif` (auto-orient) is implied. Ops: " + valid_ops_help()
)
FORMATS = click.Choice(["jpeg", "jpg", "png", "webp"], case_sensitive=False)


def image_options(*, prefix: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--ops, --format, --quality: what is done to each image, for every kind that makes images."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed((
            spec_option(ImageOptions, "ops", "--ops", help=prefix + OPS_HELP),
            spec_option(ImageOptions, "format", "--format", type=FORMATS, help=prefix + "Output format."),
            spec_option(ImageOptions, "quality", "--quality", type=click.IntRange(1, 100),
                        help=prefix + "Encoder quality."),
        )):  # fmt: skip
            command = option(command)
        return command

    return decorate


@click.command("images")
@click.argument("sources", nargs=-1, required=True)
@image_options()
@output_options(
    "Folder for the outputs [default: $PIPELINE_OUTPUT_ROOT or $PIPELINE_HOME/outputs, then JOB].",
    "Items per task [default: $PIPELINE_BATCH_SIZE or 20, adapting to the cost per item].",
)
@follow_options
@click.pass_obj
def command(
    ctx: CliContext, sources: tuple[str, ...], ops: str, format: str, quality: int, output_dir: Path | None,
    overwrite: bool, batch_size: int | None, wait: bool, as_json: bool, timeout: float | None,
) -> Any:  # fmt: skip
    """Process images from SOURCES: URLs, files, directories (recursive), globs, or .txt files of URLs.

    \b
    Examples:
      pipeline submit images ./photos --ops thumbnail:256,grayscale --format webp --wait
      pipeline submit images https://host/a.jpg urls.txt 'shots/**/*.png' --ops resize:640x480:fill
    """
    spec = ImagesSpec.build(sources=sources, ops=ops, format=format, quality=quality, output_dir=output_dir,
                            overwrite=overwrite, batch_size=batch_size)  # fmt: skip
    return run(ctx, spec, wait=wait, as_json=as_json, timeout=timeout)
