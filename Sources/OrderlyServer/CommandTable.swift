/// One protocol command: `VERB [NOUN]` → what runs it, the permission it needs, and the names of
/// its positional arguments (DESIGN.md §2). Adding a command is one SQL function plus one row.
public struct Command: Sendable {
    public enum Action: Sendable, Equatable {
        /// Handled by the session itself (HELLO, AUTH, PING, HELP, QUIT).
        case builtin(Builtin)
        /// `SELECT * FROM api.<function>(actor, args)`: one round trip, one data line per row.
        case sql(function: String)
    }

    public enum Builtin: Sendable, Equatable {
        case hello, auth, ping, help, quit, stats
    }

    /// Upper-case words, e.g. `WHOAMI` or `ORDER SHOW`.
    public let name: String
    public let action: Action
    /// Needed by the session's role; nil: any authenticated user (or anyone, if `beforeAuth`).
    public let permission: String?
    /// Names given to positional arguments, in order (`ORDER SHOW 1042` → `{"id":1042}`).
    public let positional: [String]
    /// Allowed before AUTH.
    public let beforeAuth: Bool
    public let usage: String
    public let summary: String

    public init(_ name: String, _ action: Action, permission: String? = nil, positional: [String] = [], beforeAuth: Bool = false, usage: String? = nil, summary: String) {
        self.name = name
        self.action = action
        self.permission = permission
        self.positional = positional
        self.beforeAuth = beforeAuth
        self.usage = usage ?? name
        self.summary = summary
    }

    var wordCount: Int { name.split(separator: " ").count }
}

/// The commands a server answers, looked up by their leading words.
public struct CommandTable: Sendable {
    public let commands: [Command]
    private let byName: [String: Command]

    public init(_ commands: [Command]) {
        self.commands = commands
        self.byName = Dictionary(commands.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The longest command whose words start the request: `ORDER LINE ADD order=1` finds
    /// `ORDER LINE ADD` before `ORDER LINE` and `ORDER`.
    public func resolve(_ words: [String]) -> Command? {
        for count in stride(from: min(words.count, Self.maxWords), through: 1, by: -1) {
            if let command = byName[words.prefix(count).joined(separator: " ")] { return command }
        }
        return nil
    }

    /// The most words a command name has.
    static let maxWords = 3

    public static let standard = CommandTable([
        Command("HELLO", .builtin(.hello), beforeAuth: true, summary: "Server name, version, protocol and limits."),
        Command("AUTH", .builtin(.auth), beforeAuth: true, usage: "AUTH username password",
                summary: "Log in. Quote a password with spaces as a JSON string: AUTH alice \"my secret\"."),
        Command("PING", .builtin(.ping), beforeAuth: true, summary: "Answers +PONG."),
        Command("HELP", .builtin(.help), beforeAuth: true, usage: "HELP [command]",
                summary: "The commands you may run now, or the usage of one."),
        Command("QUIT", .builtin(.quit), beforeAuth: true, summary: "Close the connection."),
        Command("WHOAMI", .sql(function: "api.whoami"), summary: "Your username, display name, roles and permissions."),
        Command("INBOX", .sql(function: "api.inbox"), permission: "inbox.read", usage: "INBOX [unread=true] [limit=N] [before=id]",
                summary: "Your notifications, newest first: the events pushed to you, also those sent while you were offline."),
        Command("INBOX ACK", .sql(function: "api.inbox_ack"), permission: "inbox.read", positional: ["id"], usage: "INBOX ACK id|all",
                summary: "Mark one notification, or all of them, as read."),
        Command("CUSTOMER CREATE", .sql(function: "api.customer_create"), permission: "customer.manage",
                usage: "CUSTOMER CREATE name= phone= email= [company=] [segment=] [region=]",
                summary: "Create a customer. Phone in international form (+49 30 1234567); e-mail unique."),
        Command("CUSTOMER UPDATE", .sql(function: "api.customer_update"), permission: "customer.manage", positional: ["id"],
                usage: "CUSTOMER UPDATE id [name=] [phone=] [email=] [company=] [segment=] [region=]",
                summary: "Change the fields given; an empty company or region clears it."),
        Command("CUSTOMER SHOW", .sql(function: "api.customer_show"), permission: "customer.read", positional: ["id"],
                usage: "CUSTOMER SHOW id", summary: "A customer with its addresses (default first) and an order summary."),
        Command("CUSTOMER FIND", .sql(function: "api.customer_find"), permission: "customer.read", positional: ["q"],
                usage: "CUSTOMER FIND q= [limit=20]",
                summary: "Customers whose name, e-mail or phone contains q (at least 3 characters), best matches first."),
        Command("ADDRESS ADD", .sql(function: "api.address_add"), permission: "customer.manage",
                usage: "ADDRESS ADD customer= recipient= phone= line1= [line2=] city= region= postal_code= country= [label=] [default=true]",
                summary: "Add a ship-to address (ISO 3166-1 country code). A customer's first address is its default."),
        Command("ADDRESS UPDATE", .sql(function: "api.address_update"), permission: "customer.manage", positional: ["id"],
                usage: "ADDRESS UPDATE id [recipient=] [phone=] [line1=] [line2=] [city=] [region=] [postal_code=] [country=] [label=] [default=true]",
                summary: "Change the fields given; default=true makes it the customer's default address."),
        Command("ADDRESS REMOVE", .sql(function: "api.address_remove"), permission: "customer.manage", positional: ["id"],
                usage: "ADDRESS REMOVE id",
                summary: "Remove an address (orders that used it keep it); the newest other address becomes the default."),
        Command("CATALOG", .sql(function: "api.catalog"), permission: "catalog.read",
                usage: "CATALOG [category=CODE] [q=text] [limit=50] [after=CODE]",
                summary: "Active products by code; a category includes its sub-categories; q matches code or name."),
        Command("PRODUCT SHOW", .sql(function: "api.product_show"), permission: "catalog.read", positional: ["code"],
                usage: "PRODUCT SHOW code", summary: "A product with its category, options and price deltas, SKUs with stock, bundle components."),
        Command("PRODUCT PRICE", .sql(function: "api.product_price"), permission: "catalog.read", positional: ["code"],
                usage: "PRODUCT PRICE code [qty=1] [options={...}] [params={...}] [customer=id] [ship_to=id|DE|US-CA] [coupon=CODE] [sku=CODE]",
                summary: "Price one line with the pricing engine, step by step: list price, tiers, discounts, coupon, tax."),
        Command("CATEGORY CREATE", .sql(function: "api.category_create"), permission: "catalog.manage",
                usage: "CATEGORY CREATE code= name= [parent=CODE]", summary: "Create a category, optionally under a parent."),
        Command("PRODUCT CREATE", .sql(function: "api.product_create"), permission: "catalog.manage",
                usage: "PRODUCT CREATE code= name= kind=goods|service|custom [category=] [base_price=] [currency=EUR] [description=] [formula= params={...}] [sku=]",
                summary: "Create a product; goods get a default SKU, custom products may have a price formula."),
        Command("PRODUCT UPDATE", .sql(function: "api.product_update"), permission: "catalog.manage", positional: ["code"],
                usage: "PRODUCT UPDATE code [name=] [category=] [base_price=] [description=] [active=] [formula=] [params={...}]",
                summary: "Change the fields given; active=false takes a product off sale."),
        Command("OPTION ADD", .sql(function: "api.option_add"), permission: "catalog.manage",
                usage: "OPTION ADD product= group= [name=] [variant=] [required=] [multiple=] [position=] values=[{\"value\":..,\"name\":..,\"price_delta\":..}]",
                summary: "Add an option group with its values, or new values to an existing group."),
        Command("SKU CREATE", .sql(function: "api.sku_create"), permission: "catalog.manage",
                usage: "SKU CREATE product= code= options={...} [stock=0]", summary: "Add a SKU for one value of every variant option."),
        Command("STOCK SET", .sql(function: "api.stock_set"), permission: "catalog.manage",
                usage: "STOCK SET sku= on_hand=N [reason=]", summary: "Set a SKU's stock on hand (never below what is reserved)."),
        Command("STOCK ADJUST", .sql(function: "api.stock_adjust"), permission: "catalog.manage",
                usage: "STOCK ADJUST sku= delta=N [reason=]", summary: "Add to or take from a SKU's stock on hand (never below what is reserved)."),
        Command("BUNDLE CREATE", .sql(function: "api.bundle_create"), permission: "catalog.manage",
                usage: "BUNDLE CREATE code= name= base_price= items=[{\"sku\":..,\"qty\":..}] [category=] [currency=EUR] [description=]",
                summary: "Create a bundle: its own price, fixed component SKUs."),
        Command("PRICE SET", .sql(function: "api.price_set"), permission: "pricing.manage",
                usage: "PRICE SET product= [segment=standard] [sku=] price=N | PRICE SET product= [segment=] min_qty=N percent=P [remove=true]",
                summary: "Set a segment price for a product or SKU, or a graduated quantity band (percent off from min_qty)."),
        Command("RULE CREATE", .sql(function: "api.rule_create"), permission: "pricing.manage",
                usage: "RULE CREATE name= kind=percent|fixed|buy_x_get_y [value=] [buy= get=] [product=] [category=] [segment=] [starts=] [ends=] [priority=100] [exclusive=false]",
                summary: "Create a discount rule; lower priority applies first, an exclusive rule only alone."),
        Command("RULE UPDATE", .sql(function: "api.rule_update"), permission: "pricing.manage", positional: ["id"],
                usage: "RULE UPDATE id [name=] [value=] [buy=] [get=] [starts=] [ends=] [priority=] [exclusive=] [active=]",
                summary: "Change a rule's figures, window or priority; active=false switches it off."),
        Command("COUPON CREATE", .sql(function: "api.coupon_create"), permission: "pricing.manage",
                usage: "COUPON CREATE code= rules=[id,...] [starts=] [ends=] [max_uses=] [max_uses_per_customer=]",
                summary: "Create a coupon; its rules then apply only to orders that carry it."),
        Command("TAX SET", .sql(function: "api.tax_set"), permission: "pricing.manage",
                usage: "TAX SET country=DE [region=] rate=19 [name=] [remove=true]",
                summary: "Set the tax percentage of a country or one of its regions (the region wins)."),
        Command("ORDER QUOTE", .sql(function: "api.order_quote"), permission: "order.create",
                usage: "ORDER QUOTE customer= lines=[…] [coupon=] [ship_to=]",
                summary: "Price lines for a customer, each with its explanation; saves nothing."),
        Command("ORDER DRAFT", .sql(function: "api.order_draft"), permission: "order.create",
                usage: "ORDER DRAFT customer= [type=standard|custom|strategic] [ship_to=] [requested_date=] [note=] [coupon=]",
                summary: "Start a draft order (ship-to defaults to the customer's default address)."),
        Command("ORDER UPDATE", .sql(function: "api.order_update"), permission: "order.create", positional: ["id"],
                usage: "ORDER UPDATE id [ship_to=] [coupon=] [requested_date=] [type=]",
                summary: "Change a draft's ship-to, coupon (coupon=\"\" takes it off), requested date or type; it is re-priced."),
        Command("ORDER LINE ADD", .sql(function: "api.order_line_add"), permission: "order.create",
                usage: "ORDER LINE ADD order= (sku=|product=) qty= [options={…}] [params={…}] [unit_price= reason=]",
                summary: "Add a line to a draft; the whole order is re-priced. A manual unit_price needs price.override."),
        Command("ORDER LINE SET", .sql(function: "api.order_line_set"), permission: "order.create",
                usage: "ORDER LINE SET order= line= [qty=] [options={…}] [params={…}] [sku=|product=] [unit_price= reason=] [clear_override=true]",
                summary: "Change a line of a draft; the whole order is re-priced."),
        Command("ORDER LINE REMOVE", .sql(function: "api.order_line_remove"), permission: "order.create",
                usage: "ORDER LINE REMOVE order= line=", summary: "Remove a line from a draft."),
        Command("ORDER NOTE", .sql(function: "api.order_note"), permission: "order.create",
                usage: "ORDER NOTE order= text= [kind=delivery|packaging|general]",
                summary: "Add a note; notes are kept for good and shown to the warehouse and production."),
        Command("ORDER CREATE", .sql(function: "api.order_create"), permission: "order.create",
                usage: "ORDER CREATE customer= lines=[…] [type=] [ship_to=] [requested_date=] [coupon=] [note=] [submit=true] [idempotency_key=]",
                summary: "Create an order in one step, optionally submitting it. A retry with the same idempotency_key gets the same reply."),
        Command("ORDER SUBMIT", .sql(function: "api.order_submit"), permission: "order.submit", positional: ["id"],
                usage: "ORDER SUBMIT id [idempotency_key=]",
                summary: "Submit a draft: prices are fixed, the coupon used, stock reserved."),
        Command("ORDER SHOW", .sql(function: "api.order_show"), permission: "order.read", positional: ["id"],
                usage: "ORDER SHOW id",
                summary: "An order: customer, ship-to, lines with their price explanation, totals, notes, status history."),
        Command("ORDER LIST", .sql(function: "api.order_list"), permission: "order.read",
                usage: "ORDER LIST [status=] [customer=] [mine=true] [from=] [to=] [limit=50] [after=id]",
                summary: "Orders you may see, newest first; pass the last id as after= for the next page."),
        Command("APPROVAL QUEUE", .sql(function: "api.approval_queue"), permission: "order.approve", usage: "APPROVAL QUEUE [limit=50]",
                summary: "Approval steps waiting for you (your roles and delegations, within your limits), oldest first."),
        Command("APPROVAL SHOW", .sql(function: "api.approval_show"), permission: "order.read", positional: ["order"],
                usage: "APPROVAL SHOW order",
                summary: "An order's approval chain: each step's role, status, who decided and when, comment, due time, reminders."),
        Command("ORDER APPROVE", .sql(function: "api.order_approve"), permission: "order.approve", positional: ["id"],
                usage: "ORDER APPROVE id [comment=]", summary: "Approve the order's current step, if it is yours to decide."),
        Command("ORDER REJECT", .sql(function: "api.order_reject"), permission: "order.approve", positional: ["id"],
                usage: "ORDER REJECT id reason=",
                summary: "Reject the order at its current step: stock is released and the creator told why."),
        Command("DELEGATE", .sql(function: "api.delegate"), permission: "order.approve",
                usage: "DELEGATE to=username until= [from=now] [role=]",
                summary: "Let another user approve in your place (one role or all of yours) for a time window."),
        Command("DELEGATE LIST", .sql(function: "api.delegate_list"), permission: "order.approve",
                summary: "Delegations you gave and received."),
        Command("DELEGATE REVOKE", .sql(function: "api.delegate_revoke"), permission: "order.approve", positional: ["id"],
                usage: "DELEGATE REVOKE id", summary: "End a delegation you gave."),
        Command("PICK LIST", .sql(function: "api.pick_list"), permission: "order.read_all", usage: "PICK LIST [limit=50] [after=order]",
                summary: "Approved orders to pick: reserved SKUs, ship-to and every note, by requested date."),
        Command("WORK QUEUE", .sql(function: "api.work_queue"), permission: "order.read_all", usage: "WORK QUEUE [limit=50] [after=order]",
                summary: "Custom-made and service lines of approved orders, with parameters and notes."),
        Command("STATS", .builtin(.stats), permission: "stats.read",
                summary: "Server figures: connections, requests and errors by code, pool use, p50/p99 latency per command."),
    ])
}
