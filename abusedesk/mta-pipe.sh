#!/bin/sh
# The desk's MTA pipe command: mta-pipe.sh ENV_FILE [ingest_mail options] < message
#
# Postfix's pipe(8) (and Exim's pipe transport) start the command with an almost empty
# environment, so the desk's settings (ABUSEDESK_ENV, DATABASE_URL, SECRET_KEY...) come from
# ENV_FILE: KEY=value lines, the format of a systemd EnvironmentFile, read here with the shell.
# ABUSEDESK_PYTHON in it names the interpreter (default: the .venv next to manage.py); it must be
# executable by the pipe's user (a pyenv Python under /root is not).
#
# Exit status: 0 stored, 65 not mail, 75 (EX_TEMPFAIL) for every other failure, including an
# unreadable ENV_FILE or a Python that cannot start: the MTA keeps the mail and retries, where
# any other status would bounce the report to its sender for good.

tempfail() {
    echo "abusedesk mta-pipe: $*; the message stays queued" >&2
    exit 75
}

[ "$#" -ge 1 ] || tempfail "usage: mta-pipe.sh ENV_FILE [ingest_mail options]"
env_file=$1
shift
[ -r "$env_file" ] || tempfail "cannot read $env_file as $(id -un)"
# Loaded once in a subshell first: a syntax error in a sourced file ends a POSIX shell at once,
# with status 2.
(set -a && . "$env_file") >/dev/null 2>&1 || tempfail "cannot load $env_file"
set -a
. "$env_file"
set +a

root=$(cd "$(dirname "$0")/.." && pwd) || tempfail "cannot find the desk next to $0"
python=${ABUSEDESK_PYTHON:-$root/.venv/bin/python}
[ -x "$python" ] || tempfail "$python is not executable by $(id -un)"

"$python" "$root/manage.py" ingest_mail "$@"
status=$?
case $status in
    0 | 65 | 75) exit "$status" ;;
    *) tempfail "ingest_mail exited with status $status" ;;
esac
