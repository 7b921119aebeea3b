"""The --image-size / --normalize options shared by every command that reads image data (--data)."""

import typer

IMAGE_SIZE = typer.Option(None, "--image-size", help="Resize every image to N or HxW pixels (default: as stored; "
                                                     "an image folder uses its first image's size).")
NORMALIZE = typer.Option("dataset", "--normalize", help="Input normalisation the teacher expects: dataset (mean/std of "
                                                        "the training split), none (pixels in [0, 1]), imagenet, half "
                                                        "([-1, 1]) or MEAN/STD, e.g. 0.5,0.4,0.4/0.2,0.2,0.2.")


def load_cli_data(data: str, **kwargs):
    """edgekd.data.load_data, saying on stderr what it left out (a stage's report says it for compress)."""
    import sys

    from edgekd.data import load_data

    bundle = load_data(data, **kwargs)
    if note := bundle.skipped_note():
        print(f"warning: {note}", file=sys.stderr)
    return bundle


def in_panel(option, panel: str):
    """A copy of a shared option shown under `panel` in --help (and so in that section of a config file)."""
    import copy

    option = copy.copy(option)
    option.rich_help_panel = panel
    return option
