module github.com/hookd-dev/hookd

go 1.26.8
