"""The ``vqlens`` command: ``vqlens app`` starts the app, other commands are vqcore's.

Usage::

    vqlens app [streamlit options...]   start the app, e.g. vqlens app --server.port 8502
    vqlens app --data-dir /data         the same, offering the server's folder /data on the home page
    vqlens report DATA --spec ... ...   any other command goes to vqcore.cli.main (python -m vqcore)
    vqlens --version

``app`` is the only command of this module: it needs Streamlit (the ``[app]``
extra). Every other command is handed, with all its arguments and unchanged,
to ``vqcore.cli.main(argv)`` when that module exists, so a command added there
is a ``vqlens`` command too; ``vqcore`` is imported only then.
"""

import importlib
import importlib.util
import sys
import tomllib
from pathlib import Path

_HERE = Path(__file__).resolve().parent

USAGE = """\
usage: vqlens <command> [arguments...]

commands:
  app [streamlit options...]   start the VQ Lens app (needs the [app] extra), e.g.
                               vqlens app --server.port 8502
                               vqlens app --data-dir /data (the server's data folder)
{core}
options:
  -h, --help                   show this message
  --version                    print the version
"""


def app_dir():
    """The folder holding the app's app.py, pages/, ui/ and .streamlit/config.toml.

    An installed wheel has it at ``vqlens/app/``; a checkout (or an editable
    install of one) has it at the repository root, next to this package.
    """
    for d in (_HERE / "app", _HERE.parent):
        if (d / "app.py").is_file() and (d / "pages").is_dir() and (d / "ui" / "__init__.py").is_file():
            return d
    raise FileNotFoundError(f"the VQ Lens app (app.py, pages/, ui/) is neither in {_HERE / 'app'} "
                            f"nor in {_HERE.parent}")


def _flag_name(arg):
    return arg[2:].split("=", 1)[0] if arg.startswith("--") else None


def config_flags(config_file, given=()):
    """The app's shipped Streamlit settings as ``--section.option=value`` flags.

    Streamlit reads ``.streamlit/config.toml`` from the current directory only,
    so outside the checkout the app's settings (upload limit, sidebar, theme)
    are passed on its command line instead. Options named in ``given`` (the
    user's own flags) are left out, so the user's value wins.
    """
    try:
        config = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    taken = {_flag_name(a) for a in given} - {None}
    flags = []
    for section, options in config.items():
        for option, value in options.items():
            name = f"{section}.{option}"
            if name in taken:
                continue
            text = str(value).lower() if isinstance(value, bool) else str(value)
            flags.append(f"--{name}={text}")
    return flags


APP_FLAGS = ("--data-dir",)  # the app's own options (the script's arguments), each with one value


def split_app_args(args):
    """``vqlens app``'s arguments as (Streamlit's options, the app script's own arguments).

    ``--data-dir PATH`` (or ``--data-dir=PATH``) and everything after ``--`` go to the app
    (``streamlit run app.py -- --data-dir PATH``); everything else is Streamlit's.
    """
    args = list(args)
    streamlit_args, script_args = [], []
    if "--" in args:
        cut = args.index("--")
        args, script_args = args[:cut], args[cut + 1:]
    own = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in APP_FLAGS:
            own += args[i:i + 2]
            i += 2
            continue
        if arg.split("=", 1)[0] in APP_FLAGS:
            own.append(arg)
        else:
            streamlit_args.append(arg)
        i += 1
    return streamlit_args, own + script_args


def run_app(args):
    """``vqlens app [streamlit options...] [--data-dir PATH]``: ``streamlit run app.py`` with the app's
    settings; ``--data-dir`` (the server's data folder) goes to the app (see :func:`split_app_args`)."""
    if importlib.util.find_spec("streamlit") is None:
        print("vqlens app needs Streamlit: pip install 'vqlens[app]' (or pip install -r requirements.txt "
              "in a checkout).", file=sys.stderr)
        return 1
    from streamlit.web import cli as streamlit_cli

    root = app_dir()
    args, script_args = split_app_args(args)
    argv = ["run", str(root / "app.py"), *config_flags(root / ".streamlit" / "config.toml", args), *args]
    if script_args:
        argv += ["--", *script_args]
    try:
        streamlit_cli.main(args=argv, prog_name="streamlit", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


COMMANDS = {"app": run_app}


def _core_main():
    """``vqcore.cli.main`` if that module exists, else None (imports vqcore only when asked)."""
    try:
        found = importlib.util.find_spec("vqcore.cli") is not None
    except ModuleNotFoundError:  # no vqcore at all
        found = False
    return importlib.import_module("vqcore.cli").main if found else None


def _usage():
    core = ""
    if _core_main() is not None:
        core = ("  <other> [arguments...]       any other command is vqcore's (python -m vqcore <command>),\n"
                "                               e.g. vqlens report --help\n")
    return USAGE.format(core=core)


def main(argv=None):
    """Run ``vqlens`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage(), end="", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] == "--version":
        from vqcore._version import __version__

        print(f"vqlens {__version__}")
        return 0
    command = COMMANDS.get(argv[0])
    if command is not None:
        return command(argv[1:])
    core = _core_main()
    if core is None:
        print(f"vqlens: unknown command {argv[0]!r}\n\n{_usage()}", end="", file=sys.stderr)
        return 2
    status = core(argv)
    return status if isinstance(status, int) else 0
