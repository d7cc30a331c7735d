"""The `edgeml` command: one sub-command group per stage of the data flow.

Exit codes: 0 done; 1 an error (`error: ...`, one line on stderr); 2 a usage error (click's message);
130 interrupted (Ctrl-C; staging folders are removed on the way out, outputs are left as they were).
"""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

from edgeml.console import make_console, print_error, widen_help
from edgeml.errors import EdgemlError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it; typer returns it on KeyboardInterrupt

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Edge ML on AWS IoT Greengrass v2.")


def _register() -> None:
    """Attach each stage's sub-commands. Imported lazily so a missing optional extra fails late."""
    from edgeml.components.cli import register as register_components
    from edgeml.config.cli import app as config_app
    from edgeml.deploy.cli import register as register_deploy
    from edgeml.model.cli import app as model_app
    from edgeml.twin.cli import register as register_twin

    app.add_typer(model_app, name="model", help="Compile and package models.")
    app.add_typer(config_app, name="config", help="The account the CLI talks to (from the CDK stacks).")
    register_components(app)
    register_twin(app)
    register_deploy(app)


def os_error_line(error: OSError) -> str:
    """`<path>: <reason>` for an OSError from the file system, else its own text on one line."""
    if error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return " ".join(str(error).split())


def _interrupted() -> NoReturn:
    make_console(stderr=True).print("interrupted", highlight=False)
    sys.exit(EXIT_INTERRUPTED)


def run_app(command: typer.Typer) -> None:
    """Runs a typer app: returns on success, else exits with the codes above (no traceback to the user).

    In non-standalone mode typer returns the exit code of `typer.Exit` (130 for a KeyboardInterrupt it
    caught) and raises its (vendored click) usage errors, which carry their own exit code (2).
    """
    try:
        result = command(standalone_mode=False)
    except KeyboardInterrupt:  # before or after typer's own handler (e.g. while importing)
        _interrupted()
    except EdgemlError as error:
        print_error(str(error))
        sys.exit(EXIT_ERROR)
    except OSError as error:  # the file system refused (permissions, a read-only or full disk, ...)
        print_error(os_error_line(error))
        sys.exit(EXIT_ERROR)
    except typer.Abort:  # Ctrl-C or EOF at a prompt
        _interrupted()
    except typer.TyperException as error:  # usage errors (exit 2) and typer's other errors
        show = getattr(error, "show", None)
        if callable(show):
            show()
        else:
            print_error(error.format_message())
        sys.exit(error.exit_code)
    if result == EXIT_INTERRUPTED:
        _interrupted()
    if isinstance(result, int) and result != 0:  # a command's typer.Exit(code)
        sys.exit(result)


def main() -> None:
    """Entry point of `edgeml`."""
    widen_help()
    try:
        _register()
    except KeyboardInterrupt:
        _interrupted()
    run_app(app)


if __name__ == "__main__":
    main()
