// Package deploy holds no code: its directory carries the deployment files
// of mojodex-scheduler (compose service, systemd unit, Prometheus alert
// rules, Grafana dashboard) and its tests check them, together with the
// Containerfile at the repository root.
//
// Tests that need an outside tool (buildah, promtool, systemd-analyze) skip
// when it is missing, except under CI=true, where a missing buildah or
// promtool fails them (.ci/run installs both).
package deploy
