package apidoc_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tokenlease/tokenlease/internal/apptest"
)

// chromium is Debian's browser; CI installs it (.ci/run).
const chromium = "/usr/bin/chromium"

// screenshot is the README's picture of /docs, rewritten only when
// UPDATE_SCREENSHOTS=1.
const screenshot = "../../docs/img/docs.png"

// TestDocsPageInABrowser opens /docs of a real pod in headless Chromium,
// waits until every operation of the document is listed, authorizes with a
// bearer key, and runs GET /tokens/stats through "Try it out".
func TestDocsPageInABrowser(t *testing.T) {
	if _, err := exec.LookPath(chromium); err != nil {
		t.Fatalf("the /docs browser test needs Chromium at %s: install it with `apt-get install -y chromium` (%v)", chromium, err)
	}
	pod := apptest.NewPod(t, apptest.WithoutSweeper())
	wantOps := 0
	for _, item := range loadDocument(t).Paths.Map() {
		wantOps += len(item.Operations())
	}

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(alloc)
	defer cancelCtx()
	// A generous bound for a loaded 2-core machine; each step waits on a condition.
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	key := pod.AdminKey // the "try it" call must authenticate like any client
	const stats = "#operations-tokens-stats"
	err := chromedp.Do(ctx,
		chromedp.Navigate(pod.URL+"/docs"),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('.opblock').length === `+strconv.Itoa(wantOps),
			chromedp.WithPollingTimeout(60*time.Second)),

		// Authorize with a bearer key through the dialog the security schemes produce.
		chromedp.Click(chromedp.CSS(`button.authorize`)),
		chromedp.SendKeys(chromedp.CSS(`input[aria-label="auth-bearer-value"]`), key),
		chromedp.Click(chromedp.CSS(`.auth-container .auth-btn-wrapper button.authorize`)),
		chromedp.Click(chromedp.CSS(`button.btn-done`)),

		chromedp.Click(chromedp.CSS(stats+` .opblock-summary-control`)),
		chromedp.Click(chromedp.CSS(stats+` .try-out__btn`)),
		chromedp.Click(chromedp.CSS(stats+` .execute`)),
		chromedp.WaitVisible(chromedp.CSS(stats+` .live-responses-table .response .response-col_status`)),
		chromedp.ScrollIntoView(chromedp.CSS(stats)),
	)
	listed, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('.opblock').length`))
	if err != nil {
		t.Fatalf("drive /docs in Chromium: %v (listed %d of %d operations)", err, listed, wantOps)
	}
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(stats+` .live-responses-table .response .response-col_status`)))
	if err != nil {
		t.Fatal(err)
	}
	curl, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(stats+` .curl`)))
	if err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if listed != wantOps {
		t.Errorf("/docs lists %d operations, the document has %d", listed, wantOps)
	}
	if strings.TrimSpace(status) != "200" {
		t.Errorf("Try it out on GET /tokens/stats shows status %q, want 200", status)
	}
	if !strings.Contains(curl, "Authorization: Bearer "+key) {
		t.Errorf("the call did not carry the authorized key; curl: %s", curl)
	}

	out := filepath.Join(t.TempDir(), "docs.png")
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		out = screenshot
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", out)
}
