import PostgresClient

/// Catalog and customer rows that order tests start from, made through the same SQL the
/// commands use.
extension TestDatabase {
    /// A goods product with one SKU (`<code>-STD`) holding `stock` units.
    public func createStockedProduct(_ code: String, name: String, price: String, stock: Int) async throws {
        try await execute("INSERT INTO orderly.products (code, name, kind, base_price) VALUES ($1, $2, 'goods', $3::numeric)",
                          [code, name, price])
        try await execute("""
            INSERT INTO orderly.skus (product_id, code, stock_on_hand)
            SELECT id, $1 || '-STD', $2::integer FROM orderly.products WHERE code = $1
            """, [code, String(stock)])
    }

    /// A customer created by `user`, with one (default) address in Germany. Returns its id.
    public func createCustomer(by user: String, name: String, email: String, phone: String) async throws -> Int {
        let created = try await execute("""
            SELECT api.customer_create(u.id, jsonb_build_object('name', $2::text, 'email', $3::text, 'phone', $4::text))::jsonb ->> 'id'
            FROM orderly.users u WHERE u.username = $1
            """, [user, name, email, phone])
        guard let id = created.rows.first?.first.flatMap({ $0 }).flatMap({ Int($0) }) else {
            throw TestFailure("could not create customer \(name)")
        }
        try await execute("""
            SELECT api.address_add(u.id, jsonb_build_object('customer', $2::bigint, 'recipient', 'Goods in', 'phone', $3::text,
                   'line1', 'Kai 1', 'city', 'Hamburg', 'region', 'HH', 'postal_code', '20095', 'country', 'DE'))
            FROM orderly.users u WHERE u.username = $1
            """, [user, String(id), phone])
        return id
    }
}
