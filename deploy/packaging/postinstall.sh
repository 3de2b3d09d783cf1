#!/bin/sh
# Debian package hook (postinst): make systemd see the unit. The service is
# not enabled here: it needs /etc/mojodex-scheduler/env first.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
	if systemctl is-active --quiet mojodex-scheduler.service; then
		systemctl try-restart mojodex-scheduler.service || true
	else
		echo "mojodex-scheduler: set MOJODEX_BACKEND_URI, BACKGROUND_BACKEND_URI and MOJODEX_SCHEDULER_SECRET in /etc/mojodex-scheduler/env, then: systemctl enable --now mojodex-scheduler"
	fi
fi
