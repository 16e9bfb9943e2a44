package signature_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/hookd-dev/hookd/signature"
)

// A receiver wraps its webhook handler in a Verifier: the handler only ever
// sees deliveries signed with the webhook's secret, and reads the body as
// usual.
func Example() {
	const secret = "whsec_example" // the secret set on the webhook in hookd

	receive := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // the exact bytes that were verified
		fmt.Printf("accepted %s delivery %s: %s\n",
			r.Header.Get("X-CG-Hook-Event"), r.Header.Get("X-CG-Hook-Delivery"), body)
		w.WriteHeader(http.StatusOK) // answer quickly; process later
	})
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/hookd", (&signature.Verifier{Secret: secret}).Handler(receive))

	// What hookd sends, and a forgery of it.
	body := `{"id":"evt_1","type":"scan_completed","data":{"scan_id":"scn_1"}}`
	for _, sig := range []string{signature.Sign(secret, []byte(body)), signature.Sign("guess", []byte(body))} {
		req := httptest.NewRequest("POST", "/webhooks/hookd", strings.NewReader(body))
		req.Header.Set("X-CG-Hook-Event", "scan_completed")
		req.Header.Set("X-CG-Hook-Delivery", "dlv_1")
		req.Header.Set(signature.Header, sig)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		fmt.Println(strings.TrimSpace(fmt.Sprint(rec.Code, " ", rec.Body.String())))
	}
	// Output:
	// accepted scan_completed delivery dlv_1: {"id":"evt_1","type":"scan_completed","data":{"scan_id":"scn_1"}}
	// 200
	// 401 invalid signature
}

func ExampleSign() {
	fmt.Println(signature.Sign("It's a Secret to Everybody", []byte("Hello, World!")))
	// Output: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17
}

func ExampleVerify() {
	body := []byte("Hello, World!")
	header := "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	fmt.Println(signature.Verify("It's a Secret to Everybody", body, header))
	fmt.Println(signature.Verify("wrong secret", body, header))
	fmt.Println(signature.Verify("It's a Secret to Everybody", body, ""))
	// Output:
	// <nil>
	// signature: signature does not match the body
	// signature: missing X-CG-Hook-Signature header
}
