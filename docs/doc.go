// Package docs holds the project's documentation (the Markdown files of
// this directory). It has no code: its tests check README.md and the
// Markdown files against the repository (links, the quick start, settings,
// metrics and dependencies).
package docs
