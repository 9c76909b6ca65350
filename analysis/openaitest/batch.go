package openaitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The Batch API emulation: /v1/files (upload with purpose batch, content),
// /v1/batches (create, retrieve, list). A batch is worked when it is
// retrieved after its script's Polls: each line's body goes through the
// same checks and default responder as a live request (the live Script is
// left alone), answers go to the output file, error answers and requests
// the batch did not get to go to the error file, as OpenAI writes them.

// BatchScript says how one batch ends. The zero value completes it,
// answering every line.
type BatchScript struct {
	// Status is the status it ends in: "completed" (default), "expired",
	// "cancelled" or "failed".
	Status string
	// Answered is, for an expired or cancelled batch, how many lines (in
	// file order) were answered before it ended; the others are in the
	// error file with code batch_expired or batch_cancelled.
	Answered int
	// Errors answer the given lines (0-based, file order) instead of the
	// default responder; an error reply goes to the error file.
	Errors map[int]Responder
	// Polls is how many retrievals see it in_progress before it ends.
	Polls int
	// FailReason is the errors.data message of a failed batch. Default a
	// validation message.
	FailReason string
}

// BatchInfo describes a batch the server has received.
type BatchInfo struct {
	ID, InputFileID, Status string
	// Lines is the number of lines in its input file.
	Lines int
	// Metadata is as created.
	Metadata map[string]string
}

type fakeFile struct {
	id, name, purpose string
	data              []byte
	created           int64
}

type fakeBatch struct {
	id, inputFileID, status  string
	metadata                 map[string]string
	script                   BatchScript
	polls                    int
	created                  int64
	lines                    int
	outputFileID, errFileID  string
	total, completed, failed int
	errors                   []map[string]any
}

// ScriptBatches queues how the next batches created end, in order; a batch
// created when the queue is empty completes.
func (s *Server) ScriptBatches(bs ...BatchScript) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batchScripts = append(s.batchScripts, bs...)
}

// HoldBatches keeps every batch in_progress while hold is true, whatever
// its script.
func (s *Server) HoldBatches(hold bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holdBatches = hold
}

// Batches describes the batches created so far, oldest first.
func (s *Server) Batches() []BatchInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]BatchInfo, 0, len(s.batchOrder))
	for _, id := range s.batchOrder {
		b := s.batches[id]
		out = append(out, BatchInfo{ID: b.id, InputFileID: b.inputFileID, Status: b.status, Lines: b.lines, Metadata: b.metadata})
	}
	return out
}

// serveBatchAPI answers the files and batches endpoints; false: the path is
// none of them.
func (s *Server) serveBatchAPI(w http.ResponseWriter, r *http.Request) bool {
	path := r.URL.Path
	if !strings.HasPrefix(path, "/v1/files") && !strings.HasPrefix(path, "/v1/batches") {
		return false
	}
	if r.Header.Get("Authorization") != "Bearer "+s.APIKey {
		writeReply(w, errorReply(http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided."))
		return true
	}
	switch {
	case r.Method == http.MethodPost && path == "/v1/files":
		s.uploadFile(w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/v1/files/") && strings.HasSuffix(path, "/content"):
		s.fileContent(w, strings.TrimSuffix(strings.TrimPrefix(path, "/v1/files/"), "/content"))
	case r.Method == http.MethodPost && path == "/v1/batches":
		s.createBatch(w, r)
	case r.Method == http.MethodGet && path == "/v1/batches":
		s.listBatches(w)
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/v1/batches/"):
		s.retrieveBatch(r.Context(), w, strings.TrimPrefix(path, "/v1/batches/"))
	default:
		writeReply(w, errorReply(http.StatusNotFound, "invalid_request_error", "unknown_url", "Unknown request URL: "+r.Method+" "+path))
	}
	return true
}

func (s *Server) uploadFile(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		writeReply(w, errorReply(http.StatusBadRequest, "invalid_request_error", "invalid_multipart", err.Error()))
		return
	}
	purpose := r.FormValue("purpose")
	f, header, err := r.FormFile("file")
	if err != nil || purpose != "batch" {
		writeReply(w, errorReply(http.StatusBadRequest, "invalid_request_error", "invalid_file", "a file and purpose batch are required"))
		return
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.nextID++
	file := &fakeFile{id: fmt.Sprintf("file-openaitest%d", s.nextID), name: header.Filename, purpose: purpose, data: data, created: time.Now().Unix()}
	s.files[file.id] = file
	s.mu.Unlock()
	writeJSON(w, fileObject(file))
}

func fileObject(f *fakeFile) map[string]any {
	return map[string]any{"id": f.id, "object": "file", "bytes": len(f.data), "created_at": f.created,
		"filename": f.name, "purpose": f.purpose, "status": "processed"}
}

func (s *Server) fileContent(w http.ResponseWriter, id string) {
	s.mu.Lock()
	f := s.files[id]
	s.mu.Unlock()
	if f == nil {
		writeReply(w, errorReply(http.StatusNotFound, "invalid_request_error", "file_not_found", "No such File object: "+id))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(f.data)
}

func (s *Server) createBatch(w http.ResponseWriter, r *http.Request) {
	var req struct {
		InputFileID      string         `json:"input_file_id"`
		Endpoint         string         `json:"endpoint"`
		CompletionWindow string         `json:"completion_window"`
		Metadata         map[string]any `json:"metadata"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeReply(w, errorReply(http.StatusBadRequest, "invalid_request_error", "invalid_json", "We could not parse the JSON body of your request."))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[req.InputFileID]
	switch {
	case f == nil:
		writeReply(w, errorReply(http.StatusBadRequest, "invalid_request_error", "invalid_request", "no such input file: "+req.InputFileID))
		return
	case req.Endpoint != "/v1/chat/completions":
		writeReply(w, errorReply(http.StatusBadRequest, "invalid_request_error", "invalid_request", "endpoint must be /v1/chat/completions here"))
		return
	case req.CompletionWindow != "24h":
		writeReply(w, errorReply(http.StatusBadRequest, "invalid_request_error", "invalid_request", "completion_window must be 24h"))
		return
	}
	s.nextID++
	b := &fakeBatch{id: fmt.Sprintf("batch_openaitest%d", s.nextID), inputFileID: f.id, status: "validating",
		metadata: map[string]string{}, created: time.Now().Unix(), lines: bytes.Count(bytes.TrimRight(f.data, "\n"), []byte("\n")) + 1}
	for k, v := range req.Metadata {
		b.metadata[k] = fmt.Sprint(v)
	}
	if len(s.batchScripts) > 0 {
		b.script, s.batchScripts = s.batchScripts[0], s.batchScripts[1:]
	}
	s.batches[b.id] = b
	s.batchOrder = append(s.batchOrder, b.id)
	writeJSON(w, batchObject(b))
}

func (s *Server) listBatches(w http.ResponseWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data := make([]any, 0, len(s.batchOrder))
	for i := len(s.batchOrder) - 1; i >= 0; i-- { // newest first
		data = append(data, batchObject(s.batches[s.batchOrder[i]]))
	}
	writeJSON(w, map[string]any{"object": "list", "data": data, "has_more": false})
}

func (s *Server) retrieveBatch(ctx context.Context, w http.ResponseWriter, id string) {
	s.mu.Lock()
	b := s.batches[id]
	if b == nil {
		s.mu.Unlock()
		writeReply(w, errorReply(http.StatusNotFound, "invalid_request_error", "batch_not_found", "No such Batch object: "+id))
		return
	}
	work := false
	if b.status == "validating" || b.status == "in_progress" {
		b.polls++
		b.status = "in_progress"
		work = !s.holdBatches && b.polls > b.script.Polls
	}
	s.mu.Unlock()
	if work {
		s.work(ctx, b)
	}
	s.mu.Lock()
	obj := batchObject(b)
	s.mu.Unlock()
	writeJSON(w, obj)
}

// inputLine is a line of a batch's input file.
type inputLine struct {
	CustomID string          `json:"custom_id"`
	Method   string          `json:"method"`
	URL      string          `json:"url"`
	Body     json.RawMessage `json:"body"`
}

// work ends a batch as its script says.
func (s *Server) work(ctx context.Context, b *fakeBatch) {
	s.mu.Lock()
	data := s.files[b.inputFileID].data
	s.mu.Unlock()
	var lines []inputLine
	seen := map[string]bool{}
	var problems []map[string]any
	for i, raw := range bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n")) {
		var l inputLine
		switch err := json.Unmarshal(raw, &l); {
		case err != nil:
			problems = append(problems, map[string]any{"code": "invalid_json_line", "message": "line is not valid JSON", "line": i + 1})
		case l.CustomID == "" || seen[l.CustomID]:
			problems = append(problems, map[string]any{"code": "duplicate_custom_id", "message": "custom_id must be set and unique", "line": i + 1})
		case l.Method != http.MethodPost || l.URL != "/v1/chat/completions":
			problems = append(problems, map[string]any{"code": "invalid_url", "message": "method must be POST and url /v1/chat/completions", "line": i + 1})
		}
		seen[l.CustomID] = true
		lines = append(lines, l)
	}
	status := orDefault(b.script.Status, "completed")
	if status == "failed" || len(problems) > 0 {
		if len(problems) == 0 {
			problems = []map[string]any{{"code": "invalid_request", "message": orDefault(b.script.FailReason, "The batch input file is invalid."), "line": nil}}
		}
		s.mu.Lock()
		b.status, b.errors, b.total = "failed", problems, len(lines)
		s.mu.Unlock()
		return
	}
	var output, errs bytes.Buffer
	completed, failed := 0, 0
	for i, l := range lines {
		if (status == "expired" || status == "cancelled") && i >= b.script.Answered {
			code := "batch_" + status
			writeLine(&errs, map[string]any{"id": fmt.Sprintf("batch_req_%d", i), "custom_id": l.CustomID, "response": nil,
				"error": map[string]any{"code": code, "message": "This request could not be executed before the batch ended."}})
			continue
		}
		req := Request{Header: http.Header{"Authorization": []string{"Bearer " + s.APIKey}}, Body: l.Body, Batch: b.id}
		decodeErr := json.Unmarshal(l.Body, &req)
		_ = json.Unmarshal(l.Body, &req.Fields)
		s.mu.Lock()
		req.N = len(s.requests)
		s.requests = append(s.requests, req)
		responder := s.fallback
		s.mu.Unlock()
		if r, ok := b.script.Errors[i]; ok {
			responder = r
		}
		rep := s.reply(ctx, &req, decodeErr, responder)
		if rep == nil {
			return
		}
		body := rep.Body
		if body == nil && rep.Error != nil {
			body, _ = json.Marshal(map[string]any{"error": rep.Error})
		}
		line := map[string]any{"id": fmt.Sprintf("batch_req_%d", i), "custom_id": l.CustomID,
			"response": map[string]any{"status_code": rep.Status, "request_id": fmt.Sprintf("req_batch%d", i), "body": json.RawMessage(body)},
			"error":    nil}
		if rep.Status == http.StatusOK {
			writeLine(&output, line)
			completed++
		} else {
			writeLine(&errs, line)
			failed++
		}
		s.mu.Lock()
		s.requests[req.N].Status = rep.Status
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b.status, b.total, b.completed, b.failed = status, len(lines), completed, failed
	for _, f := range []struct {
		buf *bytes.Buffer
		id  *string
	}{{&output, &b.outputFileID}, {&errs, &b.errFileID}} {
		if f.buf.Len() == 0 {
			continue
		}
		s.nextID++
		file := &fakeFile{id: fmt.Sprintf("file-openaitest%d", s.nextID), name: b.id + ".jsonl", purpose: "batch_output",
			data: bytes.Clone(f.buf.Bytes()), created: time.Now().Unix()}
		s.files[file.id] = file
		*f.id = file.id
	}
}

func writeLine(buf *bytes.Buffer, v any) {
	b, _ := json.Marshal(v)
	buf.Write(b)
	buf.WriteByte('\n')
}

func batchObject(b *fakeBatch) map[string]any {
	nullable := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	var errs any
	if len(b.errors) > 0 {
		errs = map[string]any{"object": "list", "data": b.errors}
	}
	md := map[string]any{}
	for k, v := range b.metadata {
		md[k] = v
	}
	return map[string]any{
		"id": b.id, "object": "batch", "endpoint": "/v1/chat/completions", "errors": errs,
		"input_file_id": b.inputFileID, "completion_window": "24h", "status": b.status,
		"output_file_id": nullable(b.outputFileID), "error_file_id": nullable(b.errFileID),
		"created_at": b.created, "in_progress_at": nil, "expires_at": b.created + 86400,
		"request_counts": map[string]int{"total": b.total, "completed": b.completed, "failed": b.failed},
		"metadata":       md,
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}
