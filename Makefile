# mojodex-scheduler — run `make help` for the targets.
GO          ?= go
BIN         ?= bin/mojodex-scheduler
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck
STATICCHECK_VERSION ?= v0.8.2
PROTOC      ?= protoc
PROTOC_GEN_GO ?= $(shell $(GO) env GOPATH)/bin/protoc-gen-go
PROTOC_GEN_GO_VERSION ?= v1.36.12
PROTO_FILES := proto/mojodex/scheduler/control/v1/control.proto

# Build stamps, from git when available (each can be set on the command
# line). VERSION is the nearest v* tag (with -N-gHASH past it, -dirty for
# local changes); without a tag the toolchain's own stamp is kept.
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE    ?= $(shell TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd 2>/dev/null)
LDFLAGS ?= -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)

# Container image (make image).
IMAGE          ?= mojodex-scheduler
IMAGE_TAG      ?= $(or $(VERSION),dev)
IMAGE_CONTEXT  ?= build/image
CONTAINER_TOOL ?= auto
DOCKER         ?= docker
BUILDAH        ?= buildah
CA_BUNDLE      ?= /etc/ssl/certs/ca-certificates.crt
IMAGE_UID      := 65532

# goreleaser, pinned in tools/go.mod (built on first use: several minutes).
GORELEASER ?= $(GO) tool -modfile=tools/go.mod goreleaser

.PHONY: help build run test test-short lint bench bench-short microbench tools proto proto-tools clean \
	image-context image release-snapshot release-check release-config

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-17s %s\n", $$1, $$2}'

build: ## build the static binary into bin/ (CGO_ENABLED=0; version, commit and date from git)
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=auto -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mojodex-scheduler

run: build ## run the scheduler against its built-in stub of the Mojodex services (run --demo)
	$(BIN) run --demo

test: ## run every test with the race detector (includes end-to-end tests of the binary)
	$(GO) test -race -count=1 ./...

test-short: ## unit tests only, no end-to-end processes
	$(GO) test -short -count=1 ./...

lint: tools ## gofmt, go vet and staticcheck
	@unformatted="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

BENCH_FLAGS ?=

bench: ## the benchmark harness (bench/, several minutes): every scenario x scheduler, one process each; see docs/benchmarks.md
	cd bench && $(GO) build -o bin/schedbench ./cmd/schedbench && \
		bin/schedbench -all -out results -plot ../docs/benchmarks-lateness.png $(BENCH_FLAGS)

microbench: ## the Go microbenchmarks of the main module (schedule maths, lateness, memory per task, store, API client)
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-short: ## the benchmark harness in short mode (about a minute; CI runs it to catch breakage)
	cd bench && $(GO) vet ./... && $(GO) test -count=1 ./... && $(GO) build -o bin/schedbench ./cmd/schedbench && \
		bin/schedbench -all -short -out results-short -plot results-short/lateness.png $(BENCH_FLAGS)

tools: ## install staticcheck if it is missing
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

proto: proto-tools ## regenerate control/v1 from proto/ (needs protoc: apt-get install protobuf-compiler libprotobuf-dev)
	$(PROTOC) -I proto --plugin=protoc-gen-go=$(PROTOC_GEN_GO) \
		--go_out=. --go_opt=module=github.com/mojodex/mojodex-scheduler $(PROTO_FILES)

proto-tools: ## install protoc-gen-go (the version of google.golang.org/protobuf in go.mod) if it is missing
	@test -x $(PROTOC_GEN_GO) || $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

image-context: build ## stage the container build context in IMAGE_CONTEXT (binary, CA certificates, passwd, /data)
	rm -rf $(IMAGE_CONTEXT)
	mkdir -p $(IMAGE_CONTEXT)/rootfs/etc/ssl/certs $(IMAGE_CONTEXT)/data
	cp $(BIN) $(IMAGE_CONTEXT)/mojodex-scheduler
	printf 'root:x:0:0:root:/:/nonexistent\nnonroot:x:$(IMAGE_UID):$(IMAGE_UID):mojodex-scheduler:/data:/nonexistent\n' >$(IMAGE_CONTEXT)/rootfs/etc/passwd
	printf 'root:x:0:\nnonroot:x:$(IMAGE_UID):\n' >$(IMAGE_CONTEXT)/rootfs/etc/group
	@if [ -r '$(CA_BUNDLE)' ]; then cp '$(CA_BUNDLE)' $(IMAGE_CONTEXT)/rootfs/etc/ssl/certs/ca-certificates.crt; \
	else echo "make image-context: no CA bundle at $(CA_BUNDLE) (apt-get install ca-certificates): the image cannot call https:// services" >&2; fi

image: image-context ## build the container image IMAGE:IMAGE_TAG and IMAGE:latest (docker if an engine answers, else buildah)
	@tool='$(CONTAINER_TOOL)'; \
	if [ "$$tool" = auto ]; then \
		if timeout 10 $(DOCKER) info >/dev/null 2>&1; then tool=docker; \
		elif command -v $(firstword $(BUILDAH)) >/dev/null 2>&1; then tool=buildah; \
		else echo "make image: no docker engine answers and buildah is not installed (apt-get install buildah)" >&2; exit 1; fi; \
	fi; \
	args="-f Containerfile --build-arg VERSION=$(IMAGE_TAG) --build-arg REVISION=$(COMMIT) --build-arg CREATED=$(DATE) -t $(IMAGE):$(IMAGE_TAG) -t $(IMAGE):latest $(IMAGE_CONTEXT)"; \
	case "$$tool" in \
		docker) set -x; $(DOCKER) build $$args ;; \
		buildah) set -x; $(BUILDAH) bud --format docker $$args ;; \
		*) echo "make image: CONTAINER_TOOL=$$tool: use auto, docker or buildah" >&2; exit 2 ;; \
	esac

release-snapshot: ## goreleaser release --snapshot: archives, .deb and checksums in dist/, nothing published
	$(GORELEASER) release --snapshot --clean

release-check: ## goreleaser check of .goreleaser.yaml
	$(GORELEASER) check

release-config: ## the quick check of .goreleaser.yaml that CI runs (goreleaser's strict loader, without building goreleaser)
	cd tools && $(GO) vet ./... && $(GO) test -count=1 ./...

clean: ## remove build output
	rm -rf bin build dist
