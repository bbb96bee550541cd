/*!
Resource registrations, transfers and lookups at the holder (RES-1..3,
JOIN-9 and LEAVE-1 on the receiving side).
*/

use p2psip_wire::build::reason_phrase;
use p2psip_wire::resource::key_of;

use super::Node;
use super::inbound::Req;
use super::query::push_contacts;
use super::store::StoreError;

impl Node {
    /// RES-1: routed like a join; the responsible peer stores the bindings
    /// and answers 200 with the current Contacts.
    pub(super) fn handle_resource_register(&mut self, req: &Req<'_, '_>) {
        let Some(to) = req.msg.to() else { return };
        // RES-3: the key is recomputed; a resource-ID parameter is a hint.
        let key = key_of(&to.addr.uri);
        if !self.table().is_some_and(|t| t.is_responsible(&key)) {
            self.redirect(req, &key, true);
            return;
        }
        self.store_registration(req, key);
    }

    /// JOIN-9 / LEAVE-1: a peer hands over what it stored. Accepted
    /// whatever this peer's range: a leaving predecessor transfers before
    /// its leave makes the range ours.
    pub(super) fn handle_transfer(&mut self, req: &Req<'_, '_>) {
        let Some(to) = req.msg.to() else { return };
        let key = key_of(&to.addr.uri);
        self.store_registration(req, key);
    }

    fn store_registration(&mut self, req: &Req<'_, '_>, key: p2psip_wire::Id) {
        let Some(to) = req.msg.to() else { return };
        let uri = &to.addr.uri;
        let (now, default) = (self.now, self.cfg.expires);
        match self
            .store
            .apply(key, uri, uri.params.replica, req.msg, now, default)
        {
            Ok(()) => {
                tracing::debug!(%key, aor = %uri, "stored registration (RES-1)");
                let contacts = self.store.contacts(&key, now);
                let mut r = self.p2p_response(req, 200, reason_phrase(200), false);
                push_contacts(&mut r, &contacts);
                self.send_response(req, r, true);
            }
            Err(e) => {
                let code = e.status();
                let reason = match e {
                    StoreError::BadStar => "Bad Request (Contact * needs Expires 0)",
                    StoreError::OutOfOrder => "Server Internal Error (CSeq out of order)",
                };
                let r = self.p2p_response(req, code, reason, false);
                self.send_response(req, r, true);
            }
        }
    }

    /// RES-2: the responsible peer answers 200 with the Contacts, or 404.
    pub(super) fn handle_lookup(&mut self, req: &Req<'_, '_>) {
        let Some(to) = req.msg.to() else { return };
        let key = key_of(&to.addr.uri);
        if !self.table().is_some_and(|t| t.is_responsible(&key)) {
            self.redirect(req, &key, false);
            return;
        }
        let contacts = self.store.contacts(&key, self.now);
        let code = if contacts.is_empty() { 404 } else { 200 };
        let mut r = self.p2p_response(req, code, reason_phrase(code), true);
        push_contacts(&mut r, &contacts);
        self.send_response(req, r, false);
    }
}
