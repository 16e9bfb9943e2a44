module github.com/hookd-dev/hookd

go 1.26.8

require github.com/prometheus/client_golang v1.25.0 // indirect
