-- Directory objects and domain kinds (coexistence with other mail systems).

-- authoritative: every recipient is local (unknown: 550 at RCPT);
-- shared: the address space is shared with another system, and a recipient unknown here is
--         forwarded to the domain's route (its next hop) instead of refused;
-- relay: all mail for the domain goes to its route.
ALTER TABLE domains
    ADD COLUMN kind text NOT NULL DEFAULT 'authoritative'
        CHECK (kind IN ('authoritative', 'shared', 'relay')),
    ADD COLUMN catch_all text;   -- local address that gets mail for unknown names (authoritative)

-- Distribution groups: members are addresses (users, aliases, groups, contacts or outside).
CREATE TABLE groups (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    address    text NOT NULL UNIQUE CHECK (address = lower(address)),
    domain_id  bigint NOT NULL REFERENCES domains (id),
    policy     text NOT NULL DEFAULT 'anyone' CHECK (policy IN ('anyone', 'authenticated', 'members')),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE group_members (
    group_id bigint NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    member   text NOT NULL CHECK (member = lower(member)),
    PRIMARY KEY (group_id, member)
);

-- Contacts: directory addresses whose mail is forwarded to an outside address.
CREATE TABLE contacts (
    address    text PRIMARY KEY CHECK (address = lower(address)),
    domain_id  bigint NOT NULL REFERENCES domains (id),
    external   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
