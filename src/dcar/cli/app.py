"""The typer applications. Command modules attach their commands here; `dcar.cli` imports them all."""

import typer

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Adapt a CLIP model to fine-grained image-text retrieval with dual prompts (DCAR).",
)
data_app = typer.Typer(no_args_is_help=True, help="Read, check, build and synthesise datasets.")
app.add_typer(data_app, name="data")
world_app = typer.Typer(no_args_is_help=True, help="The procedural fine-grained world: check a model against it.")
app.add_typer(world_app, name="world")
