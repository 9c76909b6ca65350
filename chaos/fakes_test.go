package chaos

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/postcall/postcall/analysis/openaitest"
)

// runKey names one run as the fake model sees it: the call (by the order
// number in its transcript) and the kind, from the request's schema name.
type runKey struct {
	call int
	kind string
}

// markerRE finds the call's index in the user message: every test call's
// customer says "My order number is N-00042 ...".
var markerRE = regexp.MustCompile(`order number is N-(\d{5})`)

func keyOf(req *openaitest.Request) runKey {
	k := runKey{call: -1}
	if rf := req.ResponseFormat; rf != nil && rf.JSONSchema != nil {
		k.kind = strings.TrimPrefix(rf.JSONSchema.Name, "postcall_")
	}
	for _, m := range req.Messages {
		if m.Role != "user" {
			continue
		}
		if sm := markerRE.FindStringSubmatch(m.Content); sm != nil {
			k.call, _ = strconv.Atoi(sm[1])
			break
		}
	}
	return k
}

// answerFunc decides the reply to the nth request (from 1) of one run; nil
// means openaitest.Valid.
type answerFunc func(key runKey, nth int) *openaitest.Reply

// fakeModel is openaitest's server with a responder that counts the
// requests of every run as they arrive (a request that arrived is paid
// for, whether or not its answer got back), and answers valid output after
// a random delay unless an answerFunc says otherwise.
type fakeModel struct {
	*openaitest.Server

	mu       sync.Mutex
	perRun   map[runKey]int
	okPerRun map[runKey]int
	statuses map[int]int
	unknown  int
	answer   answerFunc
	delay    func() time.Duration
}

func newFakeModel(t *testing.T, apiKey string, delay func() time.Duration) *fakeModel {
	m := &fakeModel{perRun: map[runKey]int{}, okPerRun: map[runKey]int{}, statuses: map[int]int{}, delay: delay}
	m.Server = openaitest.NewServer(t, openaitest.WithAPIKey(apiKey), openaitest.WithDefault(m.respond))
	return m
}

// SetAnswer replaces the answer policy (nil: always valid).
func (m *fakeModel) SetAnswer(f answerFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.answer = f
}

func (m *fakeModel) respond(req *openaitest.Request) openaitest.Reply {
	key := keyOf(req)
	m.mu.Lock()
	if key.call < 0 {
		m.unknown++
	}
	m.perRun[key]++
	nth := m.perRun[key]
	answer := m.answer
	m.mu.Unlock()

	var rep openaitest.Reply
	if answer != nil {
		if r := answer(key, nth); r != nil {
			rep = *r
		}
	}
	if rep.Status == 0 && rep.Content == "" && rep.Body == nil {
		rep = openaitest.Valid()(req)
	}
	if m.delay != nil {
		rep.Delay = m.delay()
	}
	m.mu.Lock()
	m.statuses[max(rep.Status, http.StatusOK)]++
	if rep.Status == 0 || rep.Status == http.StatusOK {
		m.okPerRun[key]++
	}
	m.mu.Unlock()
	return rep
}

// Counts returns a copy of the requests received per run, the replies by
// status and the requests that named no test call.
func (m *fakeModel) Counts() (perRun map[runKey]int, statuses map[int]int, unknown int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	perRun = make(map[runKey]int, len(m.perRun))
	for k, v := range m.perRun {
		perRun[k] = v
	}
	statuses = make(map[int]int, len(m.statuses))
	for k, v := range m.statuses {
		statuses[k] = v
	}
	return perRun, statuses, m.unknown
}

// OKPerRun returns how many requests of each run were answered 200 (the
// ones a provider bills).
func (m *fakeModel) OKPerRun() map[runKey]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[runKey]int, len(m.okPerRun))
	for k, v := range m.okPerRun {
		out[k] = v
	}
	return out
}

// reply is a canned responder's reply, for answerFuncs (the responders used
// ignore the request).
func reply(r openaitest.Responder) *openaitest.Reply {
	rep := r(&openaitest.Request{})
	return &rep
}

// switchProxy forwards TCP connections from a fixed loopback address to a
// target; Down closes the listener and every connection (clients get
// "connection refused" and resets, as from a server that went away), Up
// listens on the same address again.
type switchProxy struct {
	addr, target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &switchProxy{addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	go p.serve(ln)
	t.Cleanup(p.Down)
	return p
}

func (p *switchProxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *switchProxy) handle(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil {
		p.mu.Unlock()
		_ = c.Close()
		_ = up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		_ = dst.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// Down refuses new connections and cuts the open ones.
func (p *switchProxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
}

// Up accepts connections again on the same address.
func (p *switchProxy) Up(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, err, "listen on %s again", p.addr)
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.serve(ln)
}

// received is one webhook request as a receiver saw it.
type received struct {
	integration, webhookID, callID string
	status                         int
	recordingURL                   string
}

// receiver is a set of Standard Webhooks endpoints (/hook/{integration})
// that verify every signature and record every delivery. status decides
// the answer to the nth request (from 1) of one call and integration; nil
// answers 200.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	secrets map[string]string // the integrations' whsec_ secrets
	got     []received
	perPair map[[2]string]int
	bad     []string
	status  func(integration, callID string, nth int) int
}

func newReceiver(t *testing.T, secrets map[string]string) *receiver {
	r := &receiver{secrets: map[string]string{}, perPair: map[[2]string]int{}}
	for k, v := range secrets {
		r.secrets[k] = v
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// URL is the endpoint of one integration.
func (r *receiver) URL(integration string) string { return r.srv.URL + "/hook/" + integration }

// SetStatus replaces the answer policy.
func (r *receiver) SetStatus(f func(integration, callID string, nth int) int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = f
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	integration := strings.TrimPrefix(req.URL.Path, "/hook/")
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	var event struct {
		Data struct {
			CallID       string `json:"call_id"`
			RecordingURL string `json:"recording_url"`
		} `json:"data"`
	}
	verr := r.verify(integration, req.Header, body)
	if verr == nil {
		verr = json.Unmarshal(body, &event)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if verr != nil {
		r.bad = append(r.bad, integration+": "+verr.Error())
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	pair := [2]string{integration, event.Data.CallID}
	r.perPair[pair]++
	status := http.StatusOK
	if r.status != nil {
		status = r.status(integration, event.Data.CallID, r.perPair[pair])
	}
	r.got = append(r.got, received{
		integration: integration, webhookID: req.Header.Get("webhook-id"), callID: event.Data.CallID,
		status: status, recordingURL: event.Data.RecordingURL,
	})
	w.WriteHeader(status)
}

// AddIntegration makes the receiver accept another integration.
func (r *receiver) AddIntegration(name, secret string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets[name] = secret
}

func (r *receiver) verify(integration string, h http.Header, body []byte) error {
	r.mu.Lock()
	secret, ok := r.secrets[integration]
	r.mu.Unlock()
	if !ok {
		return errors.New("unknown integration")
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	return wh.Verify(body, h)
}

// Received returns every request so far and the rejected ones (bad
// signature or body).
func (r *receiver) Received() (got []received, bad []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...), append([]string(nil), r.bad...)
}
