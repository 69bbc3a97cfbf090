-- Orderly: REPORT receivables, finance's view of what customers owe and how overdue it is, and
-- what is to be paid back (orderly.receivables, R__182_receivables.sql; analytics.receivables for BI).
INSERT INTO orderly.reports (position, name, summary, usage, groups, label, measure) VALUES
    (9, 'receivables', 'What customers still owe on approved orders and how overdue it is (prepaid: due at approval; net_N: N days after the first shipment), and refunds due, per currency',
        'REPORT receivables [group=aging|customer|order] [limit=]', '{aging,customer,order}', 'key', 'open_amount');
