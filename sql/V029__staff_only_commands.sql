-- Orderly: commands for staff only.
--
-- A customer's login holds permissions that also open staff commands (order.read opens
-- APPROVAL SHOW, customer.manage opens CUSTOMER CREATE): their functions refused a customer by
-- hand, while HELP listed them to it. The refusal is now a column of the registry, read by
-- orderly.begin_command for every command and by HELP: the message a customer login gets
-- (NULL: the command is for anyone its roles allow).

ALTER TABLE orderly.commands ADD COLUMN staff_only text
    CONSTRAINT commands_staff_only_present CHECK (staff_only IS NULL OR btrim(staff_only) <> '');
COMMENT ON COLUMN orderly.commands.staff_only IS
    'What a customer login is told when it runs the command (NULL: anyone whose roles allow it); HELP does not list it to customers';
