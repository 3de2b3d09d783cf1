package statuspage

import (
	"net/http"

	controlv1 "github.com/mojodex/mojodex-scheduler/control/v1"
	"github.com/mojodex/mojodex-scheduler/supervisor"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// This file serves the JSON API: the control plane's protobuf messages in
// protojson, as `mojodex-scheduler ctl -o json` prints them. Every route
// answers with one message type, errors included (in its error field), so
// a client decodes every answer of a route the same way.

// JSONOptions is the encoding of the JSON API: the options
// `mojodex-scheduler ctl -o json` marshals with (field names as in the
// .proto, unset fields included).
var JSONOptions = protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true, EmitUnpopulated: true}

// writeProto writes m as JSON with status.
func (s *server) writeProto(w http.ResponseWriter, status int, m proto.Message) {
	b, err := JSONOptions.Marshal(m)
	if err != nil {
		s.opts.log.Error().Err(err).Msg("status page: encoding a reply as JSON")
		http.Error(w, "the reply could not be encoded", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// replyWith builds a route's reply message carrying an error.
type replyWith func(*controlv1.Error) proto.Message

func listReply(e *controlv1.Error) proto.Message { return &controlv1.ListTasksResponse{Error: e} }
func getReply(e *controlv1.Error) proto.Message  { return &controlv1.GetTaskResponse{Error: e} }
func triggerReply(e *controlv1.Error) proto.Message {
	return &controlv1.TriggerTaskResponse{Error: e}
}
func controlReply(e *controlv1.Error) proto.Message { return &controlv1.TaskControlResponse{Error: e} }

// apiError is an error of the page itself (authentication, method), not
// of the supervisor: it has no code of its own in control/v1.
func apiError(msg string) *controlv1.Error {
	return &controlv1.Error{Code: controlv1.Code_CODE_UNSPECIFIED, Message: msg}
}

// bearerOK checks a JSON request's bearer token and answers the refusal
// itself: 401 without a token, 403 with a wrong one, 429 while wrong
// tokens are throttled.
func (s *server) bearerOK(w http.ResponseWriter, r *http.Request, reply replyWith) bool {
	present, res := s.auth.bearer(r)
	switch {
	case !present:
		w.Header().Set("WWW-Authenticate", `Bearer realm="mojodex-scheduler"`)
		s.writeProto(w, http.StatusUnauthorized, reply(apiError("this route needs the status page's token: Authorization: Bearer <token>")))
		return false
	case res == tokenThrottled:
		s.refused(r, "too many wrong tokens")
		w.Header().Set("Retry-After", "1")
		s.writeProto(w, http.StatusTooManyRequests, reply(apiError("too many wrong tokens lately; try again in a few seconds")))
		return false
	case res != tokenRight:
		s.refused(r, "wrong bearer token")
		s.writeProto(w, http.StatusForbidden, reply(apiError("wrong token")))
		return false
	}
	return true
}

// readAPI guards a JSON read: under AuthAll it needs a session or a
// bearer token.
func (s *server) readAPI(reply replyWith, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.auth == AuthAll {
			if _, ok := s.auth.session(r); !ok && !s.bearerOK(w, r, reply) {
				return
			}
		}
		h(w, r)
	}
}

// apiList serves GET /api/v1/tasks: a ListTasksResponse.
func (s *server) apiList(w http.ResponseWriter, r *http.Request) {
	list, err := s.list(r.Context())
	out := &controlv1.ListTasksResponse{Error: supervisor.ErrorProto(err)}
	for _, st := range list {
		out.Tasks = append(out.Tasks, supervisor.TaskProto(st))
	}
	s.writeProto(w, httpStatus(err), out)
}

// apiGet serves GET /api/v1/tasks/{name}: a GetTaskResponse with the
// task's runs, spec and next fires.
func (s *server) apiGet(w http.ResponseWriter, r *http.Request) {
	st, err := s.get(r.Context(), r.PathValue("name"), s.opts.ask)
	out := &controlv1.GetTaskResponse{Error: supervisor.ErrorProto(err)}
	if st.Name != "" {
		out.Task = supervisor.TaskProto(st)
	}
	s.writeProto(w, httpStatus(err), out)
}

// apiAction serves POST /api/v1/tasks/{name}/trigger|pause|resume with a
// bearer token: a TriggerTaskResponse or a TaskControlResponse.
func (s *server) apiAction(w http.ResponseWriter, r *http.Request) {
	act, ok := parseAction(r.PathValue("action"))
	if !ok {
		s.writeProto(w, http.StatusNotFound, controlReply(apiError("no such action: want trigger, pause or resume")))
		return
	}
	reply := controlReply
	if act == actTrigger {
		reply = triggerReply
	}
	if !s.auth.enabled() {
		s.refused(r, "actions are off")
		s.writeProto(w, http.StatusForbidden, reply(apiError("actions are off: set MOJODEX_SCHEDULER_UI_TOKEN to turn them on")))
		return
	}
	if err := s.auth.origin.Check(r); err != nil {
		s.refused(r, "cross-origin request")
		s.writeProto(w, http.StatusForbidden, reply(apiError("cross-origin request refused")))
		return
	}
	if !s.bearerOK(w, r, reply) {
		return
	}
	name := r.PathValue("name")
	res := s.do(r.Context(), r, act, name, "api")
	if act == actTrigger {
		t := res.trigger
		s.writeProto(w, httpStatus(res.err), &controlv1.TriggerTaskResponse{
			Started: t.Started, Reason: t.Detail, SkipReason: string(t.Reason), Error: supervisor.ErrorProto(res.err),
		})
		return
	}
	out := &controlv1.TaskControlResponse{Error: supervisor.ErrorProto(res.err)}
	if res.task.Task.Name != "" {
		out.Task = supervisor.TaskProto(res.task.Task)
	}
	s.writeProto(w, httpStatus(res.err), out)
}
