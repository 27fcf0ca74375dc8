#!/usr/bin/env python
from __future__ import annotations

import os
import sys

# sysexits.h. An MTA pipe transport defers the mail and retries on 75; any other failure code
# (1 from Django, 2 from argparse) bounces the report back to its sender for good.
EX_DATAERR, EX_TEMPFAIL = 65, 75


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "abusedesk.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


def main_as_mail_pipe() -> None:
    """`manage.py ingest_mail`: exit 0 (stored), 65 (stdin is not mail) or 75 (anything else).

    The guard sits here, before Django is imported, because what fails under an MTA happens
    before the command runs: no Django on the interpreter's path, settings that refuse an empty
    environment, a database that cannot be reached. Storing is idempotent, so a retry after a
    failure that came late (the message was stored already) is only a duplicate.
    """
    try:
        main()
    except SystemExit as exit_:
        if exit_.code in (None, 0, EX_DATAERR, EX_TEMPFAIL):
            raise
        print(f"ingest_mail: exit status {exit_.code} turned into {EX_TEMPFAIL} (try again later)", file=sys.stderr)
        sys.exit(EX_TEMPFAIL)
    except BaseException as exc:
        print(f"ingest_mail: nothing stored, try again later: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(EX_TEMPFAIL)


if __name__ == "__main__":
    if sys.argv[1:2] == ["ingest_mail"]:
        main_as_mail_pipe()
    else:
        main()
