package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/hookd-dev/hookd/seal"
)

// ResealSecrets re-encrypts every webhook secret, now sealed under the
// store's key, under next, in one transaction: either every secret moves to
// the new key or none does. It returns how many secrets it re-sealed. The
// store keeps using its old key afterwards; reopen it with next.
func (db *DB) ResealSecrets(ctx context.Context, next *seal.Key) (int, error) {
	n := 0
	err := db.write(ctx, "reseal secrets", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, secret_sealed FROM webhooks WHERE secret_sealed <> ''`)
		if err != nil {
			return err
		}
		type row struct{ id, sealed string }
		var all []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.sealed); err != nil {
				rows.Close()
				return err
			}
			all = append(all, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range all {
			plain, err := db.key.Open(r.sealed)
			if err != nil {
				return fmt.Errorf("webhook %s: %w", r.id, err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET secret_sealed = ? WHERE id = ?`, next.Seal(plain), r.id); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
