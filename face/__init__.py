"""The face of `zoo`: the only code that prints or imports rich.

cli.py's command table points at the handlers here: configs.py (configs, modules, validate), edit.py,
profile.py, search.py (search, score, export). A handler parses nothing itself (argparse does), calls
the public library API and renders through render_*.py, returning the exit code. console.py holds the
one stderr console, the one `error:` line, warnings, notes and the one progress/stage helper.
"""
