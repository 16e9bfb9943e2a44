package postgres

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// Reconnection and health check of Listen's connection.
const (
	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 10 * time.Second
	// listenCheckEvery is how long the connection may stay silent before
	// Listen checks that it is still alive: a connection lost without a
	// word (a dead host, a dropped NAT mapping) would otherwise wait for
	// notifications forever.
	listenCheckEvery   = 30 * time.Second
	listenCheckTimeout = 5 * time.Second
)

// Listen holds one dedicated connection that LISTENs on hookd_deliveries
// and calls wake for each notification: a publish, a ping or a
// redelivery committed by any process sharing the database. It also calls
// wake each time it (re)connects, since notifications sent while it was
// not listening are lost. When the connection fails, Listen reconnects
// with exponential backoff (100 ms up to 10 s, jittered), for as long as
// it takes.
//
// Listen returns nil when ctx ends or the store is closed. wake must not
// block: a dispatcher's Notify is the intended one.
func (db *DB) Listen(ctx context.Context, wake func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-db.closed:
			cancel()
		case <-ctx.Done():
		}
	}()

	backoff := listenMinBackoff
	for {
		err := db.listenOnce(ctx, wake, func() { backoff = listenMinBackoff })
		if ctx.Err() != nil {
			return nil
		}
		db.log.Warn("postgres: listening for new deliveries; reconnecting", "err", err, "after", backoff)
		// Full jitter, so that the processes of a cluster that lost the
		// database together do not come back in lockstep.
		sleep := time.Duration(rand.Int64N(int64(backoff))) + listenMinBackoff/2
		backoff = min(2*backoff, listenMaxBackoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(sleep):
		}
	}
}

// listenOnce connects, listens and wakes until the connection fails or ctx
// ends. connected is called once the LISTEN is in place.
func (db *DB) listenOnce(ctx context.Context, wake, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, db.listen.Copy())
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	connected()
	wake()
	for {
		waitCtx, cancel := context.WithTimeout(ctx, listenCheckEvery)
		_, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case err == nil:
			wake()
		case ctx.Err() != nil:
			return ctx.Err()
		case waitCtx.Err() != nil: // silent for listenCheckEvery
			checkCtx, cancel := context.WithTimeout(ctx, listenCheckTimeout)
			err := conn.Ping(checkCtx)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}
