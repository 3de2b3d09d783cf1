package statuspage

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// asset is an embedded file served under /assets/ with its digest, which
// versions its URL so that browsers may cache it for good.
type asset struct {
	body        []byte
	contentType string
	version     string
}

// loadAssets reads the embedded assets and their digests.
func loadAssets() (map[string]asset, error) {
	out := map[string]asset{}
	entries, err := fs.ReadDir(assetFS, "assets")
	if err != nil {
		return nil, fmt.Errorf("statuspage: embedded assets: %w", err)
	}
	for _, e := range entries {
		b, err := assetFS.ReadFile("assets/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("statuspage: embedded asset %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(e.Name()))
		if ct == "" {
			ct = "application/octet-stream"
		}
		out[e.Name()] = asset{body: b, contentType: ct, version: hex.EncodeToString(sum[:6])}
	}
	return out, nil
}

// serveAsset serves an embedded asset: cached for a year when asked for
// by its current version, revalidated otherwise.
func (t *templates) serveAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := t.assets[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", `"`+a.version+`"`)
	if r.URL.Query().Get("v") == a.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if r.Header.Get("If-None-Match") == `"`+a.version+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(a.body)
}

// templates holds one template set per page, each with the layout.
type templates struct {
	pages  map[string]*template.Template
	rows   *template.Template
	assets map[string]asset
}

// pageNames are the pages, each templates/NAME.html defining "content".
var pageNames = []string{"tasks", "task", "login", "message"}

func parseTemplates() (*templates, error) {
	assets, err := loadAssets()
	if err != nil {
		return nil, err
	}
	t := &templates{pages: map[string]*template.Template{}, assets: assets}
	funcs := template.FuncMap{
		// asset is the versioned URL of an embedded asset.
		"asset": func(name string) (string, error) {
			a, ok := assets[name]
			if !ok {
				return "", fmt.Errorf("statuspage: no asset %q", name)
			}
			return "/assets/" + name + "?v=" + a.version, nil
		},
		"stripLength": func() int { return StripLength },
		// count says "1 page", "3 pages".
		"count": plural,
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("statuspage: templates: %w", err)
	}
	for _, name := range pageNames {
		c, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("statuspage: templates: %w", err)
		}
		if _, err := c.ParseFS(templateFS, "templates/"+name+".html"); err != nil {
			return nil, fmt.Errorf("statuspage: template %s: %w", name, err)
		}
		t.pages[name] = c
	}
	if t.rows, err = template.New("rows.html").Funcs(funcs).ParseFS(templateFS, "templates/rows.html"); err != nil {
		return nil, fmt.Errorf("statuspage: template rows: %w", err)
	}
	return t, nil
}

// rowsPerChunk is how many rows of the tasks page one goroutine renders.
const rowsPerChunk = 128

// renderRows renders the tasks page's rows, in chunks of rowsPerChunk
// on up to GOMAXPROCS goroutines, and joins them. Each chunk is the
// output of html/template (executing a template concurrently is safe),
// so the joined rows are safe HTML in the table's body.
func (t *templates) renderRows(rows []taskRow) (template.HTML, error) {
	n := (len(rows) + rowsPerChunk - 1) / rowsPerChunk
	outs := make([]bytes.Buffer, n)
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				chunk := rows[i*rowsPerChunk : min((i+1)*rowsPerChunk, len(rows))]
				errs[i] = t.rows.ExecuteTemplate(&outs[i], "rows", chunk)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("statuspage: rendering the tasks' rows: %w", err)
	}
	size := 0
	for i := range outs {
		size += outs[i].Len()
	}
	var b strings.Builder
	b.Grow(size)
	for i := range outs {
		b.Write(outs[i].Bytes())
	}
	return template.HTML(b.String()), nil
}

// bufPool recycles the buffers pages are rendered into.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// render executes a page into a buffer, then writes it with status: a
// template error gives a 500, never half a page.
func (t *templates) render(w http.ResponseWriter, status int, name string, data any) error {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := t.pages[name].ExecuteTemplate(buf, "layout.html", data); err != nil {
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return fmt.Errorf("statuspage: rendering %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}
