# mojodex-scheduler — run `make help` for the targets.
GO          ?= go
BIN         ?= bin/mojodex-scheduler
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck
STATICCHECK_VERSION ?= v0.8.2
PROTOC      ?= protoc
PROTOC_GEN_GO ?= $(shell $(GO) env GOPATH)/bin/protoc-gen-go
PROTOC_GEN_GO_VERSION ?= v1.36.12
PROTO_FILES := proto/mojodex/scheduler/control/v1/control.proto

.PHONY: help build run test test-short lint bench bench-short microbench tools proto proto-tools clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build the binary into bin/
	$(GO) build -o $(BIN) ./cmd/mojodex-scheduler

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

clean: ## remove build output
	rm -rf bin
