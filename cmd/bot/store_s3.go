package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/picbot/picbot/store/s3blobs"
)

// blobsOptions reads blobs_url with the credentials from the configuration
// (blobs_access_key, blobs_secret_key, or PICBOT_BLOBS_*), else from the URL,
// else from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
func (c *Config) blobsOptions() (s3blobs.Options, error) {
	o, err := s3blobs.ParseURL(c.BlobsURL)
	if err != nil {
		return o, err
	}
	if c.BlobsAccessKey != "" || c.BlobsSecretKey != "" {
		o.AccessKey, o.SecretKey = c.BlobsAccessKey, c.BlobsSecretKey
	} else if o.AccessKey == "" {
		o.AccessKey, o.SecretKey, o.SessionToken = c.awsAccessKey, c.awsSecretKey, c.awsSessionToken
	}
	return o, nil
}

// validateBlobsURL checks blobs_url when set.
func (c *Config) validateBlobsURL(bad badFunc) {
	if c.BlobsURL == "" {
		return
	}
	o, err := c.blobsOptions()
	if err != nil {
		bad("blobs_url", "%v; write s3://BUCKET/PREFIX?endpoint=HOST:PORT&region=REGION&tls=true&path_style=false, or leave it empty", err)
		return
	}
	if o.AccessKey == "" || o.SecretKey == "" {
		bad("blobs_access_key", "blobs_url needs credentials: blobs_access_key and blobs_secret_key (or PICBOT_BLOBS_ACCESS_KEY and PICBOT_BLOBS_SECRET_KEY, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
}

// blobsSecrets are the object store's secret key and session token, kept out of logs.
func (c *Config) blobsSecrets() []string {
	out := []string{c.BlobsSecretKey, c.awsSecretKey, c.awsSessionToken}
	if o, err := s3blobs.ParseURL(c.BlobsURL); err == nil {
		out = append(out, o.SecretKey)
	}
	return out
}

// openObjectBlobs opens the object store blobs_url names, checking the
// bucket and credentials so that a mistake stops the start.
func openObjectBlobs(cfg Config, log *slog.Logger) (appBlobs, error) {
	o, err := cfg.blobsOptions()
	if err != nil {
		return nil, fmt.Errorf("blobs_url: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := s3blobs.Open(ctx, o)
	if errors.Is(err, s3blobs.ErrCredentials) {
		return nil, fmt.Errorf("blobs_url: %w: check blobs_access_key and blobs_secret_key (or PICBOT_BLOBS_ACCESS_KEY / PICBOT_BLOBS_SECRET_KEY, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("blobs_url: %w", err)
	}
	log.Info("images: object store", slog.String("blobs", redactURL(cfg.BlobsURL)))
	return b, nil
}
