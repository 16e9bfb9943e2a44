// Package client is a Go client for hookd's HTTP API (SPEC §3). The CLI and
// the end-to-end tests use it; so can the platform that publishes events.
//
//	admin := client.New("http://127.0.0.1:8080", adminToken)
//	org, err := admin.CreateOrganization(ctx, client.OrganizationInput{Name: "Acme"})
//
// Every method returns a *client.Error for an error answer of the API, with
// the status, code, message and field of SPEC §3's error body.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to one hookd server with one bearer token: the admin token
// or an organization's API key.
type Client struct {
	BaseURL    string // e.g. http://127.0.0.1:8080
	Token      string
	HTTPClient *http.Client // nil: a client with a 30 s timeout
}

// New returns a Client for baseURL authenticating with token.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token}
}

// Error is an error answer of the API.
type Error struct {
	Status  int    // HTTP status
	Code    string // e.g. "invalid_argument", "not_found"
	Message string
	Field   string // the input field at fault, if one is
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("hookd: %d %s: %s (field %s)", e.Status, e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("hookd: %d %s: %s", e.Status, e.Code, e.Message)
}

var defaultHTTPClient = &http.Client{Timeout: 30 * time.Second}

// do sends a request with a JSON body (when in is not nil) and decodes a
// 2xx answer into out (when not nil). It returns the status.
func (c *Client) do(ctx context.Context, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Error struct{ Code, Message, Field string }
		}
		if json.Unmarshal(raw, &e) != nil || e.Error.Code == "" {
			return resp.StatusCode, &Error{Status: resp.StatusCode, Code: "unknown", Message: strings.TrimSpace(string(raw))}
		}
		return resp.StatusCode, &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, Field: e.Error.Field}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("hookd: decoding %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// ListOptions selects a page of a list.
type ListOptions struct {
	Limit  int    // 1–200; 0 = the server's default (50)
	Cursor string // NextCursor of the previous page
}

func (o ListOptions) query(q url.Values) string {
	if o.Limit != 0 {
		q.Set("limit", fmt.Sprint(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// Page is one page of a list, newest first.
type Page[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"` // nil on the last page
}

// Organization is a tenant.
type Organization struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	PartnerID *string   `json:"partner_id"`
	CreatedAt time.Time `json:"created_at"`
}

// OrganizationInput creates an organization.
type OrganizationInput struct {
	Name      string `json:"name"`
	PartnerID string `json:"partner_id,omitempty"`
}

// CreateOrganization creates an organization (admin).
func (c *Client) CreateOrganization(ctx context.Context, in OrganizationInput) (*Organization, error) {
	var o Organization
	_, err := c.do(ctx, "POST", "/v1/organizations", in, &o)
	return &o, err
}

// GetOrganization reads an organization (admin).
func (c *Client) GetOrganization(ctx context.Context, id string) (*Organization, error) {
	var o Organization
	_, err := c.do(ctx, "GET", "/v1/organizations/"+url.PathEscape(id), nil, &o)
	return &o, err
}

// APIKey is an organization's API key; Key is set only on creation.
type APIKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Key       string    `json:"key"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateAPIKey creates an API key for an organization (admin).
func (c *Client) CreateAPIKey(ctx context.Context, orgID, name string) (*APIKey, error) {
	var k APIKey
	_, err := c.do(ctx, "POST", "/v1/organizations/"+url.PathEscape(orgID)+"/api-keys", map[string]string{"name": name}, &k)
	return &k, err
}

// DeleteAPIKey revokes an API key at once (admin).
func (c *Client) DeleteAPIKey(ctx context.Context, orgID, keyID string) error {
	_, err := c.do(ctx, "DELETE", "/v1/organizations/"+url.PathEscape(orgID)+"/api-keys/"+url.PathEscape(keyID), nil, nil)
	return err
}

// User is a portal login.
type User struct {
	ID             string `json:"id"`
	Email          string `json:"email"`
	OrganizationID string `json:"organization_id"`
}

// CreateUser creates a portal user of an organization (admin).
func (c *Client) CreateUser(ctx context.Context, orgID, email, password string) (*User, error) {
	var u User
	_, err := c.do(ctx, "POST", "/v1/organizations/"+url.PathEscape(orgID)+"/users", map[string]string{"email": email, "password": password}, &u)
	return &u, err
}
