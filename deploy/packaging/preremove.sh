#!/bin/sh
# Debian package hook (prerm): stop the service before its binary goes away
# on removal (an upgrade restarts it in postinst instead).
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl disable --now mojodex-scheduler.service >/dev/null 2>&1 || true
fi
