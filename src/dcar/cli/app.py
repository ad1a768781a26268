"""The typer applications. Command modules attach their commands here; `dcar.cli` imports them all."""

import functools
import inspect
from typing import Any, Callable, Optional, TypeVar

import typer

import dcar

# Help pages show every option's default (`show_default`), so a user sees what a run will do.
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Adapt a CLIP model to fine-grained image-text retrieval with dual prompts (DCAR).",
    context_settings={"show_default": True},
)
data_app = typer.Typer(no_args_is_help=True, help="Read, check, build, split and synthesise datasets.")
app.add_typer(data_app, name="data")
world_app = typer.Typer(no_args_is_help=True, help="The procedural fine-grained world: check a model against it.")
app.add_typer(world_app, name="world")
F = TypeVar("F", bound=Callable[..., Any])


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"dcar {dcar.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_print_version, is_eager=True, help="Print dcar's version and exit."
    ),
) -> None:
    pass


def locks_outputs(**kinds: str) -> Callable[[F], F]:
    """Decorate a command: before it runs, lock each named output parameter (``out="file"`` or
    ``"folder"``) so that a second job on the same output is refused (see :mod:`dcar.locking`)."""

    def decorate(command: F) -> F:
        signature = inspect.signature(command)

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from dcar.distributed.collective import is_main_process
            from dcar.locking import output_locks

            if not is_main_process():  # under torchrun rank 0 holds the job's locks; the other ranks write nothing
                return command(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            with output_locks(*((bound.arguments.get(name), kind) for name, kind in kinds.items())):
                return command(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
