package kratostest

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

func TestCopyConfig(t *testing.T) {
	t.Parallel()
	src := fstest.MapFS{
		"kratos.yml":                  {Data: []byte("url: http://127.0.0.1:4481/hooks/kratos/login\nkey: example-key\nother: http://127.0.0.1:4481/health\n")},
		"jsonnet/login.jsonnet":       {Data: []byte("function(ctx) { key: 'example-key' }\n")},
		"schemas/identity.json":       {Data: []byte(`{"x":1}`)},
		"deeply/nested/dir/a.jsonnet": {Data: []byte("a")},
	}
	dir := t.TempDir()
	require.NoError(t, copyConfig(dir, src, map[string]string{
		"http://127.0.0.1:4481/hooks/": "http://127.0.0.1:39999/hooks/",
		"http://127.0.0.1:4481/":       "http://wrong/",
		"example-key":                  "test-key",
	}))

	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		return string(b)
	}
	require.Equal(t, "url: http://127.0.0.1:39999/hooks/kratos/login\nkey: test-key\nother: http://wrong/health\n", read("kratos.yml"),
		"the longer key wins where both match")
	require.Equal(t, "function(ctx) { key: 'test-key' }\n", read("jsonnet/login.jsonnet"))
	require.JSONEq(t, `{"x":1}`, read("schemas/identity.json"))
	require.Equal(t, "a", read("deeply/nested/dir/a.jsonnet"))

	require.Error(t, copyConfig(t.TempDir(), src, map[string]string{"": "x"}))
}

func TestExpand(t *testing.T) {
	t.Parallel()
	got, err := expand(map[string]any{
		"log.level": "debug",
		"selfservice.flows.login.after.password.hooks": []any{map[string]any{"hook": "web_hook"}},
		"selfservice.flows.login":                      map[string]any{"ui_url": "http://x/login"},
		"courier":                                      map[string]any{"delivery_strategy": "http"},
	})
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"log": map[string]any{"level": "debug"},
		"selfservice": map[string]any{"flows": map[string]any{"login": map[string]any{
			"ui_url": "http://x/login",
			"after":  map[string]any{"password": map[string]any{"hooks": []any{map[string]any{"hook": "web_hook"}}}},
		}}},
		"courier": map[string]any{"delivery_strategy": "http"},
	}, got)

	for name, bad := range map[string]map[string]any{
		"value then key inside it": {"log": "x", "log.level": "debug"},
		"empty part":               {"log..level": "debug"},
	} {
		_, err := expand(bad)
		require.Error(t, err, name)
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	a := map[string]any{"serve": map[string]any{"public": map[string]any{"port": 1, "cors": true}}, "dsn": "x"}
	b := map[string]any{"serve": map[string]any{"public": map[string]any{"port": 2}}, "dsn": "memory"}
	require.Equal(t, map[string]any{"serve": map[string]any{"public": map[string]any{"port": 2, "cors": true}}, "dsn": "memory"}, merge(a, b))
	require.Equal(t, map[string]any{"serve": map[string]any{"public": map[string]any{"port": 1, "cors": true}}, "dsn": "x"}, a, "a is not modified")
}
