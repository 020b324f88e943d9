"""The notifier: notification events as e-mails over SMTP, sent once each (sent ledger)."""
