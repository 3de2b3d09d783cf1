package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/anthdm/hollywood/actor"
	"github.com/mojodex/mojodex-scheduler/config"
	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"github.com/mojodex/mojodex-scheduler/endpoint"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"github.com/rs/zerolog"
)

// The environment variables of the remote control endpoint (config.Config
// reads them; ctl uses them as its flags' defaults).
const (
	envRemoteAddr     = "MOJODEX_SCHEDULER_REMOTE_ADDR"
	envTLSCert        = "MOJODEX_SCHEDULER_TLS_CERT"
	envTLSKey         = "MOJODEX_SCHEDULER_TLS_KEY"
	envTLSCA          = "MOJODEX_SCHEDULER_TLS_CA"
	envInsecureRemote = "MOJODEX_SCHEDULER_INSECURE_REMOTE"
)

// remoteOff as MOJODEX_SCHEDULER_REMOTE_ADDR disables the endpoint.
const remoteOff = "off"

// tlsFiles names the PEM files of mutual TLS, and how to call each setting
// in an error message (an environment variable, or a ctl flag).
type tlsFiles struct {
	cert, key, ca             string
	certName, keyName, caName string
}

// serverTLSFiles are the TLS settings of `run`, from the environment.
func serverTLSFiles(cfg config.Config) tlsFiles {
	return tlsFiles{cert: cfg.TLSCert, key: cfg.TLSKey, ca: cfg.TLSCA, certName: envTLSCert, keyName: envTLSKey, caName: envTLSCA}
}

// mutualTLS builds the TLS configuration of the remote endpoint: nil when
// no file is set; an error when only some are. The same configuration
// listens (requiring a client certificate signed by the CA) and dials (a
// server certificate signed by the CA, for the host of the address), since
// a reply is delivered by dialling back to the requester, as hollywood's
// remote protocol does: each certificate needs both the server and the
// client extended key usages.
func mutualTLS(f tlsFiles) (*tls.Config, error) {
	set := map[string]string{f.certName: f.cert, f.keyName: f.key, f.caName: f.ca}
	var have, missing []string
	for _, name := range []string{f.certName, f.keyName, f.caName} {
		if set[name] != "" {
			have = append(have, name)
		} else {
			missing = append(missing, name)
		}
	}
	switch {
	case len(have) == 0:
		return nil, nil
	case len(missing) > 0:
		return nil, fmt.Errorf("%s must be set together to enable mutual TLS: %s set but %s missing",
			strings.Join([]string{f.certName, f.keyName, f.caName}, ", "), strings.Join(have, " and "), strings.Join(missing, " and "))
	}
	pair, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("%s=%s with %s=%s: not a PEM certificate and its private key: %w", f.certName, f.cert, f.keyName, f.key, err)
	}
	pem, err := os.ReadFile(f.ca)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.caName, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s=%s: no PEM certificate in the file", f.caName, f.ca)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		RootCAs:      pool,
	}, nil
}

// isLoopback reports whether a host:port binds loopback only: 127.0.0.0/8,
// ::1 or localhost. An empty host (every interface) and any other name are
// not.
func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// remotePlan is what the settings say about the remote control endpoint.
type remotePlan struct {
	off      bool
	addr     string
	loopback bool
	tls      *tls.Config
}

// planRemote checks the endpoint's settings without listening (validate
// runs it too): the address, the TLS files, and the policy that a
// non-loopback address needs mutual TLS, or MOJODEX_SCHEDULER_INSECURE_REMOTE
// =true: nothing else authenticates who sends commands.
func planRemote(cfg config.Config) (remotePlan, error) {
	addr := strings.TrimSpace(cfg.RemoteAddr)
	if strings.EqualFold(addr, remoteOff) {
		return remotePlan{off: true}, nil
	}
	loopback, err := isLoopback(addr)
	if err != nil {
		return remotePlan{}, fmt.Errorf("%s: %q is not host:port (e.g. %s), nor %q: %w", envRemoteAddr, addr, config.Default(envRemoteAddr), remoteOff, err)
	}
	tlsCfg, err := mutualTLS(serverTLSFiles(cfg))
	if err != nil {
		return remotePlan{}, err
	}
	if !loopback && tlsCfg == nil && !cfg.InsecureRemote {
		return remotePlan{}, fmt.Errorf("%s=%s is not a loopback address and mutual TLS is not configured: anyone who reaches it could control the scheduler; "+
			"bind 127.0.0.1, or set %s, %s and %s, or set %s=true to accept the risk",
			envRemoteAddr, addr, envTLSCert, envTLSKey, envTLSCA, envInsecureRemote)
	}
	return remotePlan{addr: addr, loopback: loopback, tls: tlsCfg}, nil
}

// newEngine builds the actor engine of `run`, with the remote control
// endpoint (package endpoint) on MOJODEX_SCHEDULER_REMOTE_ADDR unless it is
// "off"; the endpoint (nil when off) is returned for the caller to stop. It
// holds at most MOJODEX_SCHEDULER_REMOTE_MAX_CONNS connections and accepts
// only control-plane messages for the supervisor.
func newEngine(cfg config.Config, log zerolog.Logger) (*actor.Engine, *endpoint.Endpoint, error) {
	plan, err := planRemote(cfg)
	if err != nil {
		return nil, nil, err
	}
	if plan.off {
		log.Info().Str("remote", remoteOff).Msg("remote control endpoint disabled")
		e, err := actor.NewEngine(actor.NewEngineConfig())
		if err != nil {
			return nil, nil, fmt.Errorf("actor engine: %w", err)
		}
		return e, nil, nil
	}
	if !plan.loopback && plan.tls == nil {
		log.Warn().Str("addr", plan.addr).Str("setting", envInsecureRemote).
			Msg("remote control endpoint listens beyond loopback without TLS: anyone who reaches it can control the scheduler")
	}
	opts := []endpoint.Option{
		endpoint.WithLogger(log),
		endpoint.WithTLS(plan.tls),
		endpoint.WithTypes(controlTypes),
		endpoint.WithTargets(endpoint.IDs(supervisor.Kind + "/" + supervisor.ID)),
	}
	if cfg.RemoteMaxConns > 0 {
		opts = append(opts, endpoint.WithMaxConns(cfg.RemoteMaxConns))
	}
	ep, err := endpoint.Listen(plan.addr, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("remote control endpoint %s=%s: %w", envRemoteAddr, plan.addr, err)
	}
	e, err := actor.NewEngine(actor.NewEngineConfig().WithRemote(ep))
	if err != nil {
		ep.Stop()
		return nil, nil, fmt.Errorf("remote control endpoint %s=%s: %w", envRemoteAddr, plan.addr, err)
	}
	st := ep.Stats()
	log.Info().Str("addr", plan.addr).Bool("mutual_tls", plan.tls != nil).Bool("loopback", plan.loopback).
		Int("max_conns", st.MaxConns).Int("max_destinations", st.MaxDestinations).
		Str("supervisor", e.Address()+"/"+supervisor.Kind+"/"+supervisor.ID).Msg("remote control endpoint listening")
	return e, ep, nil
}

// controlTypes are the only messages the remote endpoint accepts: those of
// the control plane (protobuf package mojodex.scheduler.control.v1).
var controlTypes = endpoint.InPackages(controlv1.File_mojodex_scheduler_control_v1_control_proto.Package())
