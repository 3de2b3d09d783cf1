#!/bin/sh
# Debian package hook (postrm): forget the unit. The state directory
# (/var/lib/private/mojodex-scheduler) is kept, even on purge, since it
# records which slots already fired.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
fi
