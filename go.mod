module github.com/picbot/picbot

go 1.26.0

require (
	go.etcd.io/bbolt v1.5.0
	go.yaml.in/yaml/v4 v4.0.0
	golang.org/x/image v0.47.0
	golang.org/x/time v0.16.0
)

require golang.org/x/sys v0.49.0 // indirect
