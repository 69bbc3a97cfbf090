import OrderlyClient
import OrderlyTestSupport
import Testing

/// The whole order flow over TCP: a manager sets up a product with options and a promotion; a
/// sales rep creates the customer and address, drafts an order, adds lines with options, a note,
/// quotes, submits and shows it; the warehouse picks it.
@Suite struct OrderFlowTests {
    static let catalog = [
        "PRODUCT CREATE code=PHN-T name=\"Phone T\" kind=goods base_price=500",
        #"OPTION ADD product=PHN-T group=colour variant=true required=true values=[{"value":"black","name":"Black"},{"value":"blue","name":"Blue"}]"#,
        #"OPTION ADD product=PHN-T group=storage variant=true required=true values=[{"value":"128","name":"128 GB"},{"value":"256","name":"256 GB","price_delta":100}]"#,
        #"OPTION ADD product=PHN-T group=accessories multiple=true values=[{"value":"case","name":"Case","price_delta":20},{"value":"charger","name":"Charger","price_delta":30}]"#,
        #"SKU CREATE product=PHN-T code=PHN-T-128-BLK options={"colour":"black","storage":"128"} stock=20"#,
        #"SKU CREATE product=PHN-T code=PHN-T-256-BLU options={"colour":"blue","storage":"256"} stock=10"#,
        "PRODUCT CREATE code=SVC-T name=\"Setup\" kind=service base_price=29",
        "RULE CREATE name=\"Phone T: buy 3 get 1\" kind=buy_x_get_y buy=3 get=1 product=PHN-T",
        "TAX SET country=DE rate=19 name=VAT",
    ]

    @Test func customerToSubmittedOrderAndOntoThePickList() async throws {
        try await withTestServer { server in
            try await server.database.createUser("mona", password: "mona-password", roles: ["sales_manager"])
            try await server.database.createUser("rita", password: "rita-password", roles: ["sales_rep"])
            try await server.database.createUser("wally", password: "wally-password", roles: ["warehouse"])
            let mona = try await server.connect(as: "mona", password: "mona-password")
            for line in Self.catalog {
                let reply = try await mona.request(line)
                try #require(reply.isSuccess, "\(line) → \(reply)")
            }

            let rita = try await server.connect(as: "rita", password: "rita-password")
            let customer = try #require(try doc(try await rita.request(
                #"CUSTOMER CREATE name="Acme GmbH" phone="+49 30 1234567" email=buyer@acme.example"#).data[0])["id"].int)
            let address = try await rita.request("ADDRESS ADD customer=\(customer) recipient=\"Anna Weber\" phone=+4930111111 line1=\"Hauptstr. 1\" city=Berlin region=BE postal_code=10115 country=DE")
            try #require(address.isSuccess, "\(address)")

            // A year ahead: a requested date is today or later, and at most five years ahead.
            let requested = try #require(try await server.database.execute("SELECT (current_date + 365)::text").scalar)
            let draft = try doc(try await rita.request("ORDER DRAFT customer=\(customer) requested_date=\(requested) note=\"Call before delivery\"").data[0])
            let order = try #require(draft["id"].int)
            #expect(draft["status"].text == "draft")
            #expect(draft["ship_to"]["city"].text == "Berlin", "the default address")
            #expect(draft["notes"][0]["text"].text == "Call before delivery")
            #expect(draft["history"].items.map { $0["to"].text } == ["draft"])

            // Four blue 256 GB phones with a case: options add to the list price, the fourth is free.
            var shown = try doc(try await rita.request(
                #"ORDER LINE ADD order=\#(order) product=PHN-T qty=4 options={"colour":"blue","storage":"256","accessories":["case"]}"#).data[0])
            let line = shown["lines"][0]
            #expect(line["sku"].text == "PHN-T-256-BLU", "the variant options pick the SKU")
            #expect(line["list_price"].text == "620.00", "500 + 100 (256 GB) + 20 (case)")
            #expect(line["gross"].text == "2480.00")
            #expect(line["net"].text == "1860.00", "buy 3 get 1: 4 pay 3")
            let steps = line["explanation"].items
            #expect(steps.contains { $0["step"].text == "base" && $0["amount"].text == "500.00" })
            #expect(steps.contains { $0["step"].text == "option" && $0["group"].text == "storage" && $0["delta"].text == "100.00" },
                    "the storage delta is explained")
            #expect(steps.contains { $0["step"].text == "rule" && $0["name"].text == "Phone T: buy 3 get 1" && $0["free_units"].int == 1
                                     && $0["amount"].text == "-620.00" }, "the promotion names its rule and what it took off")

            shown = try doc(try await rita.request("ORDER LINE ADD order=\(order) product=SVC-T qty=1").data[0])
            #expect(shown["lines"].items.count == 2)
            let overridden = try await rita.request("ORDER LINE SET order=\(order) line=2 unit_price=0 reason=\"goodwill\"")
            #expect(overridden.errorCode == "FORBIDDEN", "a sales rep may not override prices")
            #expect(try await rita.request("ORDER NOTE order=\(order) kind=packaging text=\"Gift wrap, no invoice in the box\"").isSuccess)

            // A quote of the same lines prices exactly what the draft shows, and saves nothing.
            let quote = try doc(try await rita.request(
                #"ORDER QUOTE customer=\#(customer) lines=[{"product":"PHN-T","qty":4,"options":{"colour":"blue","storage":"256","accessories":["case"]}},{"product":"SVC-T","qty":1}]"#).data[0])
            #expect(quote["total"].text == shown["totals"]["total"].text)
            #expect(quote["tax_total"].text == shown["totals"]["tax"].text)
            #expect(quote["tax_total"].text == "358.91", "19 % of 1860 + 29 = 1889, shown separately")

            let submitted = try doc(try await rita.request("ORDER SUBMIT \(order)").data[0])
            // No approval rule here: the order is approved at once and, every line being in
            // stock on net terms, released to the warehouse; the history says so.
            #expect(submitted["status"].text == "ready")
            #expect(submitted["history"].items.map { $0["to"].text } == ["draft", "submitted", "approved", "ready"],
                    "the reply already shows the change")
            #expect(submitted["totals"]["total"].text == "2247.91")
            let stock = try await server.database.execute("SELECT stock_reserved FROM orderly.skus WHERE code = 'PHN-T-256-BLU'")
            #expect(stock.rows == [["4"]])

            shown = try doc(try await rita.request("ORDER SHOW \(order)").data[0])
            #expect(shown["customer"]["name"].text == "Acme GmbH")
            #expect(shown["ship_to"]["postal_code"].text == "10115")
            #expect(shown["requested_date"].text == requested)
            #expect(shown["notes"].items.map { $0["kind"].text } == ["general", "packaging"])
            #expect(shown["history"].items.map { $0["to"].text } == ["draft", "submitted", "approved", "ready"])
            #expect(shown["history"][1]["by"].text == "rita")
            #expect(shown["lines"][0]["explanation"].items.count >= 4)
            #expect(try await rita.request("ORDER LIST status=ready").data.count == 1)

            // 6 of 10 left: an order for 7 fails as a whole and leaves nothing behind.
            let short = try await rita.request(#"ORDER CREATE customer=\#(customer) lines=[{"sku":"PHN-T-128-BLK","qty":1},{"sku":"PHN-T-256-BLU","qty":7}] submit=true"#)
            #expect(short.errorCode == "CONFLICT")
            #expect(short.message == "not enough stock for SKU PHN-T-256-BLU: 7 requested, 6 available")
            let after = try await server.database.execute(
                "SELECT (SELECT count(*) FROM orderly.orders), (SELECT sum(stock_reserved) FROM orderly.skus)")
            #expect(after.rows == [["1", "4"]])

            let wally = try await server.connect(as: "wally", password: "wally-password")
            let picks = try await wally.request("PICK LIST")
            #expect(picks.data.count == 1)
            let pick = try doc(picks.data[0])
            #expect(pick["items"][0]["sku"].text == "PHN-T-256-BLU")
            #expect(pick["notes"].items.map { $0["text"].text } == ["Call before delivery", "Gift wrap, no invoice in the box"])
            #expect(try await wally.request("ORDER DRAFT customer=\(customer)").errorCode == "FORBIDDEN")
            for client in [mona, rita, wally] { await client.close() }
        }
    }
}
