package wechatsim

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// A fake weather API with the response shapes of QWeather (和风天气) v7, so
// that a scheduled weather report (wxgate's schedules) works offline. A
// client switches to the real service by changing only the base URL
// (https://devapi.qweather.com) and the key.
//
//	GET /v7/weather/now?location=…&key=…   current weather
//	GET /v7/weather/3d?location=…&key=…    today and the next two days (also /7d)
//	GET /geo/v2/city/lookup?location=…&key=… the LocationID of a city name
//
// location is a LocationID (101010100) or a city name in Chinese or
// English (北京, wechat.BeijingTime) of the built-in list; the real /v7/weather API
// takes LocationIDs (or "lon,lat") only. The key is the query parameter
// key or the header X-QW-Api-Key. Errors are HTTP 200 with the code in the
// body, as v7 answers: {"code":"400"} without a location, "401" for a
// missing or wrong key, "404" for an unknown location. The weather is made
// up but stable: the same city on the same day (simulated clock, Beijing
// time) always gets the same answer.
//
// Control API:
//
//	GET    /sim/api/weather          the key, the cities and the calls per LocationID
//	POST   /sim/api/weather/faults   {"location":"广州","code":"500"} or {"location":"*","http_status":503,"latency_ms":200}
//	DELETE /sim/api/weather/faults   remove them all

// DefaultWeatherKey is the key the weather API accepts until SetWeatherKey.
const DefaultWeatherKey = "wxgate-sim-weather-key"

// WeatherFault makes the weather API fail for one location ("*": all).
type WeatherFault struct {
	// Location is a LocationID or a city name; "*" or "" means every one.
	Location string `json:"location"`
	// Code answers {"code": Code} (e.g. "500", "429", "402") with HTTP 200.
	Code string `json:"code,omitempty"`
	// HTTPStatus answers this status with a plain-text body instead.
	HTTPStatus int `json:"http_status,omitempty"`
	// Latency delays the answer (the request's context still ends it).
	Latency time.Duration `json:"-"`
	// Times limits the fault to the next N calls; 0 means no limit.
	Times int `json:"times,omitempty"`
}

// weatherState is the weather API's part of the simulator; the zero value
// is ready.
type weatherState struct {
	mu     sync.Mutex
	key    string
	faults map[string]*WeatherFault // by LocationID, "*" for all
	calls  map[string]int           // by LocationID, or the raw location when unknown
}

// WeatherCity is a city the weather API knows.
type WeatherCity struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	English string  `json:"english"`
	Adm1    string  `json:"adm1"`
	Lat     float64 `json:"lat"`
	Lon     float64 `json:"lon"`
	// mean and swing shape the made-up temperatures: mean ± swing over the
	// year, coldest in mid-January.
	mean, swing float64
}

var weatherCities = []WeatherCity{
	{ID: "101010100", Name: "北京", English: "Beijing", Adm1: "北京市", Lat: 39.90, Lon: 116.41, mean: 12.5, swing: 15},
	{ID: "101020100", Name: "上海", English: "Shanghai", Adm1: "上海市", Lat: 31.23, Lon: 121.47, mean: 17, swing: 11},
	{ID: "101280101", Name: "广州", English: "Guangzhou", Adm1: "广东省", Lat: 23.13, Lon: 113.28, mean: 22.5, swing: 7.5},
	{ID: "101280601", Name: "深圳", English: "Shenzhen", Adm1: "广东省", Lat: 22.55, Lon: 114.09, mean: 23, swing: 6.5},
	{ID: "101210101", Name: "杭州", English: "Hangzhou", Adm1: "浙江省", Lat: 30.29, Lon: 120.15, mean: 17.5, swing: 12},
	{ID: "101270101", Name: "成都", English: "Chengdu", Adm1: "四川省", Lat: 30.66, Lon: 104.07, mean: 16.5, swing: 10},
	{ID: "101200101", Name: "武汉", English: "Wuhan", Adm1: "湖北省", Lat: 30.58, Lon: 114.30, mean: 17, swing: 13},
	{ID: "101110101", Name: "西安", English: "Xian", Adm1: "陕西省", Lat: 34.26, Lon: 108.95, mean: 14, swing: 14},
	{ID: "101190101", Name: "南京", English: "Nanjing", Adm1: "江苏省", Lat: 32.04, Lon: 118.77, mean: 16, swing: 13},
	{ID: "101040100", Name: "重庆", English: "Chongqing", Adm1: "重庆市", Lat: 29.56, Lon: 106.55, mean: 18.5, swing: 10},
	{ID: "101030100", Name: "天津", English: "Tianjin", Adm1: "天津市", Lat: 39.13, Lon: 117.19, mean: 12.5, swing: 15},
	{ID: "101250101", Name: "长沙", English: "Changsha", Adm1: "湖南省", Lat: 28.19, Lon: 112.98, mean: 17.5, swing: 12},
	{ID: "101230201", Name: "厦门", English: "Xiamen", Adm1: "福建省", Lat: 24.49, Lon: 118.11, mean: 21, swing: 8},
	{ID: "101120201", Name: "青岛", English: "Qingdao", Adm1: "山东省", Lat: 36.07, Lon: 120.38, mean: 13, swing: 12},
	{ID: "101050101", Name: "哈尔滨", English: "Harbin", Adm1: "黑龙江省", Lat: 45.76, Lon: 126.64, mean: 5, swing: 22},
	{ID: "101310101", Name: "海口", English: "Haikou", Adm1: "海南省", Lat: 20.04, Lon: 110.20, mean: 24.5, swing: 5},
}

// WeatherCities lists the cities of the weather API.
func WeatherCities() []WeatherCity { return append([]WeatherCity(nil), weatherCities...) }

// lookupCity finds a city by LocationID, Chinese name (with or without
// 市) or English name.
func lookupCity(location string) (WeatherCity, bool) {
	l := strings.TrimSpace(location)
	for _, c := range weatherCities {
		if l == c.ID || l == c.Name || l == c.Name+"市" || strings.EqualFold(l, c.English) {
			return c, true
		}
	}
	return WeatherCity{}, false
}

// SetWeatherKey sets the key the weather API accepts ("" restores
// DefaultWeatherKey).
func (s *Simulator) SetWeatherKey(key string) {
	s.weather.mu.Lock()
	defer s.weather.mu.Unlock()
	s.weather.key = key
}

// WeatherKey returns the key the weather API accepts.
func (s *Simulator) WeatherKey() string {
	s.weather.mu.Lock()
	defer s.weather.mu.Unlock()
	return s.weather.keyLocked()
}

func (w *weatherState) keyLocked() string {
	if w.key == "" {
		return DefaultWeatherKey
	}
	return w.key
}

// SetWeatherFault makes calls for a location fail until ClearWeatherFaults;
// a second fault for the same location replaces the first.
func (s *Simulator) SetWeatherFault(f WeatherFault) error {
	id := "*"
	if f.Location != "" && f.Location != "*" {
		c, ok := lookupCity(f.Location)
		if !ok {
			return errorf(CodeInvalid, "未知城市 unknown location %q (see GET /sim/api/weather)", f.Location)
		}
		id = c.ID
	}
	if f.Code == "" && f.HTTPStatus == 0 && f.Latency == 0 {
		return errorf(CodeInvalid, "故障需要 code、http_status 或 latency_ms: a weather fault needs code, http_status or latency_ms")
	}
	if f.HTTPStatus != 0 && (f.HTTPStatus < 400 || f.HTTPStatus > 599) {
		return errorf(CodeInvalid, "http_status 须为 4xx 或 5xx: http_status must be 4xx or 5xx, got %d", f.HTTPStatus)
	}
	s.weather.mu.Lock()
	defer s.weather.mu.Unlock()
	if s.weather.faults == nil {
		s.weather.faults = map[string]*WeatherFault{}
	}
	s.weather.faults[id] = &f
	return nil
}

// ClearWeatherFaults removes every weather fault.
func (s *Simulator) ClearWeatherFaults() {
	s.weather.mu.Lock()
	defer s.weather.mu.Unlock()
	s.weather.faults = nil
}

// WeatherCalls returns the number of weather calls per LocationID (the raw
// location for unknown ones), faults and key errors included.
func (s *Simulator) WeatherCalls() map[string]int {
	s.weather.mu.Lock()
	defer s.weather.mu.Unlock()
	out := make(map[string]int, len(s.weather.calls))
	for k, v := range s.weather.calls {
		out[k] = v
	}
	return out
}

func (s *Simulator) weatherRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v7/weather/now", s.serveWeather(weatherNow))
	mux.HandleFunc("GET /v7/weather/3d", s.serveWeather(weatherDays(3)))
	mux.HandleFunc("GET /v7/weather/7d", s.serveWeather(weatherDays(7)))
	mux.HandleFunc("GET /geo/v2/city/lookup", s.serveCityLookup)
	mux.HandleFunc("GET /sim/api/weather", s.ctlWeather)
	mux.HandleFunc("POST /sim/api/weather/faults", s.ctlSetWeatherFault)
	mux.HandleFunc("DELETE /sim/api/weather/faults", s.ctlClearWeatherFaults)
}

// weatherAnswer builds the body of a weather call for a city at now.
type weatherAnswer func(c WeatherCity, now time.Time, r *http.Request) map[string]any

// weatherCheck handles what every weather API call shares: the key, the
// location, counting and faults. It returns the city, or false when it
// has answered already.
func (s *Simulator) weatherCheck(w http.ResponseWriter, r *http.Request) (WeatherCity, bool) {
	q := r.URL.Query()
	location := strings.TrimSpace(q.Get("location"))
	key := q.Get("key")
	if key == "" {
		key = r.Header.Get("X-QW-Api-Key")
	}
	city, known := lookupCity(location)
	counted := location
	if known {
		counted = city.ID
	}

	s.weather.mu.Lock()
	if s.weather.calls == nil {
		s.weather.calls = map[string]int{}
	}
	s.weather.calls[counted]++
	wantKey := s.weather.keyLocked()
	var fault WeatherFault
	faulty := false
	for _, id := range []string{counted, "*"} {
		if f := s.weather.faults[id]; f != nil {
			fault, faulty = *f, true
			if f.Times > 0 {
				if f.Times--; f.Times == 0 {
					delete(s.weather.faults, id)
				}
			}
			break
		}
	}
	s.weather.mu.Unlock()

	if faulty && fault.Latency > 0 {
		if !sleepCtx(r.Context(), fault.Latency) {
			return city, false
		}
	}
	switch {
	case faulty && fault.HTTPStatus != 0:
		http.Error(w, http.StatusText(fault.HTTPStatus), fault.HTTPStatus)
		return city, false
	case faulty && fault.Code != "":
		writeWeather(w, map[string]any{"code": fault.Code})
		return city, false
	case key == "" || key != wantKey:
		writeWeather(w, map[string]any{"code": "401"})
		return city, false
	case location == "":
		writeWeather(w, map[string]any{"code": "400"})
		return city, false
	case !known:
		writeWeather(w, map[string]any{"code": "404"})
		return city, false
	}
	return city, true
}

func (s *Simulator) serveWeather(answer weatherAnswer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		city, ok := s.weatherCheck(w, r)
		if !ok {
			return
		}
		writeWeather(w, answer(city, s.now(), r))
	}
}

func writeWeather(w http.ResponseWriter, body map[string]any) {
	writeJSON(w, "application/json", http.StatusOK, body)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// qweatherTime formats times as QWeather does: 2026-11-24T07:25+08:00.
func qweatherTime(t time.Time) string {
	return t.In(wechat.BeijingTime).Format("2006-01-02T15:04-07:00")
}

func fxLink(r *http.Request, c WeatherCity) string {
	return "http://" + r.Host + "/v7/weather/now?location=" + c.ID
}

func refer() map[string]any {
	return map[string]any{"sources": []string{"wxgate simulator"}, "license": []string{"test data, not a forecast"}}
}

// day is the made-up weather of a city on one Beijing day.
type day struct {
	date          time.Time
	min, max      int
	sky           sky
	night         sky
	windDir       int // 0..7, north clockwise
	windScale     int
	humidity      int
	precip        float64
	pressure, vis int
	uv            int
}

type sky struct {
	icon string
	text string
}

var (
	skies     = []sky{{"100", "晴"}, {"101", "多云"}, {"103", "晴间多云"}, {"104", "阴"}, {"305", "小雨"}, {"306", "中雨"}, {"302", "雷阵雨"}}
	nightSky  = map[string]sky{"100": {"150", "晴"}, "101": {"151", "多云"}, "103": {"153", "晴间多云"}}
	snow      = sky{"400", "小雪"}
	windNames = []string{"北风", "东北风", "东风", "东南风", "南风", "西南风", "西风", "西北风"}
)

// weatherOn returns the weather of c on the Beijing day of t.
func weatherOn(c WeatherCity, t time.Time) day {
	local := t.In(wechat.BeijingTime)
	date := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, wechat.BeijingTime)
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%s", c.ID, date.Format("2006-01-02"))
	seed := h.Sum64()
	pick := func(n int) int {
		v := int(seed % uint64(n))
		seed = seed/uint64(n) ^ seed<<7
		return v
	}
	// Coldest around 15 January.
	phase := 2 * math.Pi * float64(date.YearDay()-15) / 365.25
	mean := c.mean - c.swing*math.Cos(phase)
	d := day{date: date}
	d.max = int(math.Round(mean + 3 + float64(pick(5))))
	d.min = d.max - 6 - pick(5)
	d.sky = skies[pick(len(skies))]
	if d.sky.icon >= "300" && d.max <= 2 {
		d.sky = snow
	}
	d.night = d.sky
	if n, ok := nightSky[d.sky.icon]; ok {
		d.night = n
	}
	d.windDir = pick(8)
	d.windScale = 1 + pick(4)
	d.humidity = 30 + pick(60)
	if d.sky.icon >= "300" {
		d.precip = float64(1+pick(150)) / 10
		d.humidity = max(d.humidity, 70)
	}
	d.pressure = 1000 + pick(30)
	d.vis = 5 + pick(25)
	d.uv = 1 + pick(10)
	return d
}

func itoa(n int) string { return strconv.Itoa(n) }

func windScaleText(n int) string { return itoa(n) + "-" + itoa(n+1) }

func weatherNow(c WeatherCity, now time.Time, r *http.Request) map[string]any {
	d := weatherOn(c, now)
	// The temperature follows the day: lowest at 05:00, highest at 15:00.
	local := now.In(wechat.BeijingTime)
	hour := float64(local.Hour()) + float64(local.Minute())/60
	f := 1 - math.Mod(hour-15+24, 24)/14
	if hour >= 5 && hour <= 15 {
		f = (hour - 5) / 10
	}
	temp := int(math.Round(float64(d.min) + f*float64(d.max-d.min)))
	obs := now.Truncate(10 * time.Minute)
	return map[string]any{
		"code":       "200",
		"updateTime": qweatherTime(obs),
		"fxLink":     fxLink(r, c),
		"now": map[string]string{
			"obsTime":   qweatherTime(obs.Add(-5 * time.Minute)),
			"temp":      itoa(temp),
			"feelsLike": itoa(temp - d.windScale/2),
			"icon":      d.sky.icon,
			"text":      d.sky.text,
			"wind360":   itoa(d.windDir * 45),
			"windDir":   windNames[d.windDir],
			"windScale": itoa(d.windScale),
			"windSpeed": itoa(d.windScale*5 + 2),
			"humidity":  itoa(d.humidity),
			"precip":    strconv.FormatFloat(d.precip/10, 'f', 1, 64),
			"pressure":  itoa(d.pressure),
			"vis":       itoa(d.vis),
			"cloud":     itoa(min(d.humidity, 99)),
			"dew":       itoa(temp - (100-d.humidity)/5),
		},
		"refer": refer(),
	}
}

func weatherDays(n int) weatherAnswer {
	return func(c WeatherCity, now time.Time, r *http.Request) map[string]any {
		daily := make([]map[string]string, 0, n)
		for i := range n {
			d := weatherOn(c, now.AddDate(0, 0, i))
			daily = append(daily, map[string]string{
				"fxDate":         d.date.Format("2006-01-02"),
				"sunrise":        "06:" + fmt.Sprintf("%02d", 10+d.pressure%40),
				"sunset":         "18:" + fmt.Sprintf("%02d", 5+d.vis%50),
				"moonrise":       "",
				"moonset":        "",
				"moonPhase":      "盈凸月",
				"moonPhaseIcon":  "803",
				"tempMax":        itoa(d.max),
				"tempMin":        itoa(d.min),
				"iconDay":        d.sky.icon,
				"textDay":        d.sky.text,
				"iconNight":      d.night.icon,
				"textNight":      d.night.text,
				"wind360Day":     itoa(d.windDir * 45),
				"windDirDay":     windNames[d.windDir],
				"windScaleDay":   windScaleText(d.windScale),
				"windSpeedDay":   itoa(d.windScale*5 + 2),
				"wind360Night":   itoa(d.windDir * 45),
				"windDirNight":   windNames[d.windDir],
				"windScaleNight": windScaleText(max(d.windScale-1, 1)),
				"windSpeedNight": itoa(d.windScale*4 + 1),
				"humidity":       itoa(d.humidity),
				"precip":         strconv.FormatFloat(d.precip, 'f', 1, 64),
				"pressure":       itoa(d.pressure),
				"vis":            itoa(d.vis),
				"cloud":          itoa(min(d.humidity, 99)),
				"uvIndex":        itoa(d.uv),
			})
		}
		return map[string]any{
			"code":       "200",
			"updateTime": qweatherTime(now.Truncate(time.Hour)),
			"fxLink":     fxLink(r, c),
			"daily":      daily,
			"refer":      refer(),
		}
	}
}

// serveCityLookup is GeoAPI's city lookup: the LocationID of a name.
func (s *Simulator) serveCityLookup(w http.ResponseWriter, r *http.Request) {
	c, ok := s.weatherCheck(w, r)
	if !ok {
		return
	}
	writeWeather(w, map[string]any{
		"code": "200",
		"location": []map[string]string{{
			"name": c.Name, "id": c.ID,
			"lat": strconv.FormatFloat(c.Lat, 'f', 2, 64), "lon": strconv.FormatFloat(c.Lon, 'f', 2, 64),
			"adm2": c.Name, "adm1": c.Adm1, "country": "中国", "tz": "Asia/Shanghai", "utcOffset": "+08:00",
			"isDst": "0", "type": "city", "rank": "10", "fxLink": fxLink(r, c),
		}},
		"refer": refer(),
	})
}

// WeatherView is what GET /sim/api/weather shows.
type WeatherView struct {
	Key    string         `json:"key"`
	Cities []WeatherCity  `json:"cities"`
	Calls  map[string]int `json:"calls"`
	Faults []WeatherFault `json:"faults"`
}

func (s *Simulator) ctlWeather(w http.ResponseWriter, r *http.Request) {
	s.weather.mu.Lock()
	v := WeatherView{Key: s.weather.keyLocked(), Cities: WeatherCities(), Calls: map[string]int{}, Faults: []WeatherFault{}}
	for k, n := range s.weather.calls {
		v.Calls[k] = n
	}
	ids := make([]string, 0, len(s.weather.faults))
	for id := range s.weather.faults {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		f := *s.weather.faults[id]
		f.Location = id
		v.Faults = append(v.Faults, f)
	}
	s.weather.mu.Unlock()
	writeControl(w, http.StatusOK, v)
}

func (s *Simulator) ctlSetWeatherFault(w http.ResponseWriter, r *http.Request) {
	var in struct {
		WeatherFault
		LatencyMS int64 `json:"latency_ms"`
	}
	if err := readControl(r, &in); err != nil {
		writeControlError(w, err)
		return
	}
	f := in.WeatherFault
	f.Latency = time.Duration(in.LatencyMS) * time.Millisecond
	if err := s.SetWeatherFault(f); err != nil {
		writeControlError(w, err)
		return
	}
	writeControl(w, http.StatusCreated, map[string]bool{"ok": true})
}

func (s *Simulator) ctlClearWeatherFaults(w http.ResponseWriter, r *http.Request) {
	s.ClearWeatherFaults()
	w.WriteHeader(http.StatusNoContent)
}
