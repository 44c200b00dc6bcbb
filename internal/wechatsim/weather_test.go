package wechatsim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// weatherBundle is a simulator on a fixed clock behind a test server.
type weatherBundle struct {
	sim *Simulator
	url string
}

func weatherSetup(t *testing.T, now time.Time) *weatherBundle {
	t.Helper()
	sim, err := New(Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return &weatherBundle{sim: sim, url: srv.URL}
}

// get calls path with the query and returns the HTTP status and JSON body.
func (b *weatherBundle) get(t *testing.T, path string, q url.Values, header ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.url+path+"?"+q.Encode(), nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return resp.StatusCode, body
}

func query(location, key string) url.Values {
	q := url.Values{}
	if location != "" {
		q.Set("location", location)
	}
	if key != "" {
		q.Set("key", key)
	}
	return q
}

var weatherDay = time.Date(2026, 11, 24, 7, 30, 0, 0, wechat.BeijingTime)

// The answers have QWeather v7's shape: codes as strings, every value a
// string, times with minutes and offset.
func TestWeatherShape(t *testing.T) {
	t.Parallel()
	b := weatherSetup(t, weatherDay)

	status, body := b.get(t, "/v7/weather/now", query("北京", DefaultWeatherKey))
	if status != http.StatusOK || body["code"] != "200" {
		t.Fatalf("now: %d %v", status, body)
	}
	if body["updateTime"] != "2026-11-24T07:30+08:00" {
		t.Errorf("updateTime %v", body["updateTime"])
	}
	now, _ := body["now"].(map[string]any)
	for _, k := range []string{"obsTime", "temp", "feelsLike", "icon", "text", "wind360", "windDir", "windScale", "windSpeed",
		"humidity", "precip", "pressure", "vis", "cloud", "dew"} {
		if _, ok := now[k].(string); !ok {
			t.Errorf("now.%s = %#v, want a string", k, now[k])
		}
	}
	if _, err := strconv.Atoi(now["temp"].(string)); err != nil {
		t.Errorf("now.temp %q is not an integer", now["temp"])
	}

	status, body = b.get(t, "/v7/weather/3d", query("101010100", DefaultWeatherKey))
	if status != http.StatusOK || body["code"] != "200" {
		t.Fatalf("3d: %d %v", status, body)
	}
	daily, _ := body["daily"].([]any)
	if len(daily) != 3 {
		t.Fatalf("3d: %d days", len(daily))
	}
	first := daily[0].(map[string]any)
	if first["fxDate"] != "2026-11-24" || daily[2].(map[string]any)["fxDate"] != "2026-11-26" {
		t.Errorf("fxDate %v … %v", first["fxDate"], daily[2].(map[string]any)["fxDate"])
	}
	lo, _ := strconv.Atoi(first["tempMin"].(string))
	hi, _ := strconv.Atoi(first["tempMax"].(string))
	if lo >= hi || first["textDay"] == "" {
		t.Errorf("day: min %d max %d text %v", lo, hi, first["textDay"])
	}
	// now lies within today's range.
	_, body = b.get(t, "/v7/weather/now", query("beijing", DefaultWeatherKey))
	temp, _ := strconv.Atoi(body["now"].(map[string]any)["temp"].(string))
	if temp < lo || temp > hi {
		t.Errorf("now %d outside today's %d..%d", temp, lo, hi)
	}

	_, body = b.get(t, "/geo/v2/city/lookup", query("广州", DefaultWeatherKey))
	if loc := body["location"].([]any)[0].(map[string]any); loc["id"] != "101280101" || loc["name"] != "广州" {
		t.Errorf("lookup: %v", loc)
	}
}

// The same city on the same day always gets the same weather; names and
// ids are the same city.
func TestWeatherStable(t *testing.T) {
	t.Parallel()
	b := weatherSetup(t, weatherDay)
	_, a := b.get(t, "/v7/weather/3d", query("上海", DefaultWeatherKey))
	_, c := b.get(t, "/v7/weather/3d", query("101020100", DefaultWeatherKey))
	if !jsonEqual(a["daily"], c["daily"]) {
		t.Errorf("上海 and 101020100 differ:\n%v\n%v", a["daily"], c["daily"])
	}
	if calls := b.sim.WeatherCalls(); calls["101020100"] != 2 {
		t.Errorf("calls %v, want 2 for 101020100", calls)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestWeatherErrors(t *testing.T) {
	t.Parallel()
	b := weatherSetup(t, weatherDay)
	code := func(path string, q url.Values, header ...string) string {
		t.Helper()
		status, body := b.get(t, path, q, header...)
		if status != http.StatusOK {
			return "http " + strconv.Itoa(status)
		}
		c, _ := body["code"].(string)
		return c
	}
	for _, tc := range []struct {
		name, location, key string
		header              []string
		want                string
	}{
		{"no key", "北京", "", nil, "401"},
		{"wrong key", "北京", "nope", nil, "401"},
		{"key in header", "北京", "", []string{"X-QW-Api-Key", DefaultWeatherKey}, "200"},
		{"no location", "", DefaultWeatherKey, nil, "400"},
		{"unknown location", "Atlantis", DefaultWeatherKey, nil, "404"},
	} {
		if got := code("/v7/weather/now", query(tc.location, tc.key), tc.header...); got != tc.want {
			t.Errorf("%s: code %s, want %s", tc.name, got, tc.want)
		}
	}

	b.sim.SetWeatherKey("secret-1")
	if got := code("/v7/weather/now", query("北京", DefaultWeatherKey)); got != "401" {
		t.Errorf("old key after SetWeatherKey: %s", got)
	}
	if got := code("/v7/weather/now", query("北京", "secret-1")); got != "200" {
		t.Errorf("new key: %s", got)
	}
	b.sim.SetWeatherKey("")

	// A fault fails one city only, by name or id.
	if err := b.sim.SetWeatherFault(WeatherFault{Location: "广州", Code: "500"}); err != nil {
		t.Fatal(err)
	}
	if got := code("/v7/weather/3d", query("101280101", DefaultWeatherKey)); got != "500" {
		t.Errorf("faulty city: %s", got)
	}
	if got := code("/v7/weather/3d", query("深圳", DefaultWeatherKey)); got != "200" {
		t.Errorf("other city: %s", got)
	}
	// HTTP failures, limited in number, for every city.
	if err := b.sim.SetWeatherFault(WeatherFault{Location: "*", HTTPStatus: 503, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if got := code("/v7/weather/now", query("深圳", DefaultWeatherKey)); got != "http 503" {
		t.Errorf("http fault: %s", got)
	}
	if got := code("/v7/weather/now", query("深圳", DefaultWeatherKey)); got != "200" {
		t.Errorf("after the one http fault: %s", got)
	}
	b.sim.ClearWeatherFaults()
	if got := code("/v7/weather/3d", query("广州", DefaultWeatherKey)); got != "200" {
		t.Errorf("after clearing: %s", got)
	}
	if err := b.sim.SetWeatherFault(WeatherFault{Location: "Atlantis", Code: "500"}); ErrorCodeOf(err) != CodeInvalid {
		t.Errorf("fault for an unknown city: %v", err)
	}
}

func TestWeatherControl(t *testing.T) {
	t.Parallel()
	b := weatherSetup(t, weatherDay)
	post := func(body string) int {
		resp, err := http.Post(b.url+"/sim/api/weather/faults", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post(`{"location":"广州","code":"500","latency_ms":1}`); s != http.StatusCreated {
		t.Fatalf("set fault: %d", s)
	}
	if s := post(`{"location":"广州","colour":"red"}`); s != http.StatusBadRequest {
		t.Errorf("unknown field: %d", s)
	}
	status, body := b.get(t, "/sim/api/weather", nil)
	if status != http.StatusOK || body["key"] != DefaultWeatherKey {
		t.Fatalf("view: %d %v", status, body)
	}
	faults, _ := body["faults"].([]any)
	if len(faults) != 1 || faults[0].(map[string]any)["location"] != "101280101" {
		t.Errorf("faults %v", faults)
	}
	if cities, _ := body["cities"].([]any); len(cities) < 10 {
		t.Errorf("%d cities", len(cities))
	}
	req, _ := http.NewRequest(http.MethodDelete, b.url+"/sim/api/weather/faults", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, body := b.get(t, "/v7/weather/now", query("广州", DefaultWeatherKey)); body["code"] != "200" {
		t.Errorf("after DELETE: %v", body)
	}
}
