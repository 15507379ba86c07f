package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/store/pg/pgtest"
	"github.com/picbot/picbot/store/s3blobs/s3fake"
)

// TestS3Blobs: with blobs_url the console's /draw image is stored in the
// bucket, named by its hash, and none under data_dir; the secret key is
// never printed.
func TestS3Blobs(t *testing.T) {
	fake := s3fake.Start(t, "e2e")
	dir := t.TempDir()
	b := startBotEnv(t, dir, []string{"PICBOT_BLOBS_URL=" + fake.URL("picbot"),
		"PICBOT_BLOBS_ACCESS_KEY=" + s3fake.AccessKey, "PICBOT_BLOBS_SECRET_KEY=" + s3fake.SecretKey})
	io.WriteString(b.stdin, "/draw a red fox --seed 7\n")
	out := b.wait(t, time.Minute)
	path := pngPath.FindString(out)
	if path == "" {
		t.Fatalf("no PNG path in output:\n%s", out)
	}
	data, err := os.ReadFile(filepath.Join(dir, path))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	name := "picbot/" + hex.EncodeToString(sum[:])
	if got := fake.Get(t, name); !bytes.Equal(got, data) {
		t.Fatalf("object %s: %d bytes, want the delivered image's %d; bucket holds %v", name, len(got), len(data), fake.Objects(t, ""))
	}
	_ = filepath.WalkDir(filepath.Join(dir, "data", "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("image file under data_dir: %s", p)
		}
		return nil
	})
	stdout, stderr := b.output()
	if strings.Contains(stdout+stderr, s3fake.SecretKey) {
		t.Fatal("the secret key was printed")
	}
}

// TestS3BlobsRefused: a wrong access key or bucket stops the start with an
// error naming the key to fix, and no secret in it.
func TestS3BlobsRefused(t *testing.T) {
	fake := s3fake.Start(t, "e2e")
	for _, tc := range []struct {
		name, url, key, want string
	}{
		{"WrongKey", fake.URL(""), "NOTTHEKEY", "blobs_access_key"},
		{"WrongBucket", strings.Replace(fake.URL(""), "s3://e2e/", "s3://nosuch/", 1), s3fake.AccessKey, `blobs_url: bucket "nosuch" does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary)
			cmd.Dir = t.TempDir()
			cmd.Env = append(os.Environ(), "PICBOT_BLOBS_URL="+tc.url, "PICBOT_BLOBS_ACCESS_KEY="+tc.key, "PICBOT_BLOBS_SECRET_KEY="+s3fake.SecretKey)
			cmd.Stdin = strings.NewReader("/help\n")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("started:\n%s", out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
			if strings.Contains(string(out), s3fake.SecretKey) {
				t.Errorf("the secret key was printed:\n%s", out)
			}
		})
	}
}

// TestBlobsConfig: where blobs_url's credentials come from, that the
// secret is redacted, and that missing credentials name the key.
func TestBlobsConfig(t *testing.T) {
	env := func(kv map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
	}
	c := DefaultConfig()
	c.BlobsURL = "s3://URLKEY:URLSECRET@pics/p?endpoint=h:1"
	c.applyEnv(env(map[string]string{"AWS_ACCESS_KEY_ID": "AWSKEY", "AWS_SECRET_ACCESS_KEY": "AWSSECRET"}))
	if o, err := c.blobsOptions(); err != nil || o.AccessKey != "URLKEY" || o.SecretKey != "URLSECRET" {
		t.Errorf("URL's credentials: %+v %v", o, err)
	}
	if s := redactURL(c.BlobsURL); strings.Contains(s, "URLSECRET") {
		t.Errorf("redactURL kept the secret: %s", s)
	}
	secrets := strings.Join(c.secrets(), " ")
	for _, s := range []string{"URLSECRET", "AWSSECRET"} {
		if !strings.Contains(secrets, s) {
			t.Errorf("%s not among the redacted secrets", s)
		}
	}
	c = DefaultConfig()
	c.BlobsURL = "s3://pics/p"
	c.applyEnv(env(map[string]string{"AWS_ACCESS_KEY_ID": "AWSKEY", "AWS_SECRET_ACCESS_KEY": "AWSSECRET",
		"PICBOT_BLOBS_ACCESS_KEY": "PBKEY", "PICBOT_BLOBS_SECRET_KEY": "PBSECRET"}))
	if o, _ := c.blobsOptions(); o.AccessKey != "PBKEY" || o.SecretKey != "PBSECRET" {
		t.Errorf("PICBOT_BLOBS_* must win: %+v", o)
	}
	c.applyEnv(env(nil))
	c.BlobsAccessKey, c.BlobsSecretKey = "", ""
	if o, _ := c.blobsOptions(); o.AccessKey != "" {
		t.Errorf("no credentials anywhere: %+v", o)
	}
	found := false
	for _, p := range c.problems() {
		found = found || p.Key == "blobs_access_key"
	}
	if !found {
		t.Errorf("no problem at blobs_access_key: %v", c.problems())
	}
	c.BlobsURL = "http://pics"
	found = false
	for _, p := range c.problems() {
		found = found || p.Key == "blobs_url"
	}
	if !found {
		t.Errorf("no problem at blobs_url for http://: %v", c.problems())
	}
}

// TestMigrateToS3: with blobs_url set, `picbot migrate` copies the images
// into the bucket, where the replicas will read them, once.
func TestMigrateToS3(t *testing.T) {
	url := pgtest.URL(t)
	fake := s3fake.Start(t, "migrate")
	dir := t.TempDir()
	b := startBot(t, dir)
	io.WriteString(b.stdin, "/draw migrate to s3 --seed 3 --size 64x64\n")
	out := b.wait(t, time.Minute)
	data, err := os.ReadFile(filepath.Join(dir, pngPath.FindString(out)))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	migrate := func() string {
		t.Helper()
		cmd := exec.Command(binary, "migrate", "--to", url)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PICBOT_BLOBS_URL="+fake.URL("m"),
			"PICBOT_BLOBS_ACCESS_KEY="+s3fake.AccessKey, "PICBOT_BLOBS_SECRET_KEY="+s3fake.SecretKey)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("migrate: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := migrate(); !strings.Contains(out, "images: 1 copied") {
		t.Fatalf("first run:\n%s", out)
	}
	if out := migrate(); !strings.Contains(out, "images: 0 copied, 1 there already") {
		t.Fatalf("second run:\n%s", out)
	}
	sum := sha256.Sum256(data)
	if got := fake.Get(t, "m/"+hex.EncodeToString(sum[:])); !bytes.Equal(got, data) {
		t.Fatalf("image not in the bucket: %v", fake.Objects(t, ""))
	}
}
