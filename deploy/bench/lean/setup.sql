-- The lean ceiling: the least SQL that does one assign + unblock cycle
-- correctly, audit rows included (see cycle_audit.sql). It is what
-- `make bench` measures the service against (docs/BENCHMARKS.md, issue 14).
--
-- Same semantics as the shared reference (../shared/bench/setup.sql): a
-- random free token claimed with FOR UPDATE SKIP LOCKED from a partial index,
-- its lease set, an audit row written in the same statement; no stats
-- counters, no partitions, no extra columns. One difference: token values
-- are 16 random bytes from gen_random_uuid() (core PostgreSQL) instead of
-- pgcrypto's gen_random_bytes(16), so that no extension is needed; and the
-- indexes (the unique one on value too) are built after the tokens are
-- loaded rather than row by row: a cheaper load that ends in the same tables
-- and indexes.
--
--   createdb lean && psql -d lean -v n=10000 -f setup.sql
--   pgbench -n -c 16 -j 2 -T 8 -M prepared -f cycle_audit.sql lean   # tps = cycles/s
--
-- tokenbench suite runs this file with :n replaced by the pool size.
drop table if exists tokens;
drop sequence if exists lease_seq;
create table tokens (
  id bigint generated always as identity primary key,
  value text not null,
  state smallint not null default 0,
  rnd bigint not null,
  lease_id bigint,
  lease_expires_at timestamptz,
  alive_until timestamptz not null
) with (fillfactor=80);
create sequence lease_seq;
create or replace function claim(r bigint, ttl interval) returns table(v text, l bigint) language plpgsql as $$
declare tid bigint;
begin
  select id into tid from tokens where state=0 and rnd >= r and alive_until > now() order by rnd limit 1 for update skip locked;
  if tid is null then
    select id into tid from tokens where state=0 and rnd < r and alive_until > now() order by rnd limit 1 for update skip locked;
  end if;
  if tid is null then return; end if;
  return query update tokens set state=1, lease_id=nextval('lease_seq'), lease_expires_at=now()+ttl where id=tid returning value, lease_id;
end $$;
insert into tokens (value, rnd, alive_until)
select encode(uuid_send(gen_random_uuid()), 'base64'), (random()*9e18)::bigint, now()+interval '30 days'
from generate_series(1, :n) g;
alter table tokens add constraint tokens_value_key unique (value);
create index tokens_free_rnd on tokens (rnd) where state=0;
create index tokens_lease_due on tokens (lease_expires_at) where state=1;
create index tokens_alive on tokens (alive_until);
-- the same hot path with the audit row written in the same statement (the design's full work)
drop table if exists ev;
create table ev (id bigint generated always as identity primary key, kind smallint, token text, lease_id bigint, at timestamptz default now());
create or replace function claim_a(r bigint, ttl interval) returns table(v text, l bigint) language plpgsql as $$
declare tid bigint;
begin
  select id into tid from tokens where state=0 and rnd >= r and alive_until > now() order by rnd limit 1 for update skip locked;
  if tid is null then
    select id into tid from tokens where state=0 and rnd < r and alive_until > now() order by rnd limit 1 for update skip locked;
  end if;
  if tid is null then return; end if;
  return query with u as (update tokens set state=1, lease_id=nextval('lease_seq'), lease_expires_at=now()+ttl where id=tid returning value, lease_id),
    e as (insert into ev(kind, token, lease_id) select 1, u.value, u.lease_id from u)
    select u.value, u.lease_id from u;
end $$;
vacuum analyze tokens;
