/**
 * The portal's only script, served by Latchkey itself at `/static/webauthn.js` (CSP
 * `script-src 'self'`, no CDN, no inline code). It drives `navigator.credentials` for the buttons
 * marked `data-webauthn` and talks to the same JSON API as Authelia's SPA; every other page works
 * without it. Options arrive as JSON with base64url binary fields (WebAuthn L3 §5.1.7's JSON
 * shapes); they are converted here by hand so older browsers without parse*FromJSON work too.
 */
export const WEBAUTHN_SCRIPT = String.raw`'use strict';
(function () {
  var prefix = document.documentElement.getAttribute('data-prefix') || '';
  function b64uToBuf(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function bufToB64u(buf) {
    var bytes = new Uint8Array(buf), bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function creationOptions(o) {
    o.challenge = b64uToBuf(o.challenge);
    o.user.id = b64uToBuf(o.user.id);
    (o.excludeCredentials || []).forEach(function (c) { c.id = b64uToBuf(c.id); });
    return o;
  }
  function requestOptions(o) {
    o.challenge = b64uToBuf(o.challenge);
    (o.allowCredentials || []).forEach(function (c) { c.id = b64uToBuf(c.id); });
    return o;
  }
  function credentialJson(c) {
    var r = c.response, json = { id: c.id, rawId: bufToB64u(c.rawId), type: c.type, response: { clientDataJSON: bufToB64u(r.clientDataJSON) },
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {}, authenticatorAttachment: c.authenticatorAttachment || undefined };
    if (r.attestationObject) {
      json.response.attestationObject = bufToB64u(r.attestationObject);
      json.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      json.response.authenticatorData = bufToB64u(r.authenticatorData);
      json.response.signature = bufToB64u(r.signature);
      if (r.userHandle) json.response.userHandle = bufToB64u(r.userHandle);
    }
    return json;
  }
  function api(method, path, body) {
    var init = { method: method, credentials: 'same-origin', headers: {} };
    if (body !== undefined) { init.headers['content-type'] = 'application/json'; init.body = JSON.stringify(body); }
    return fetch(prefix + path, init).then(function (res) {
      return res.json().catch(function () { return { status: 'KO', message: 'The server answered ' + res.status + '.' }; });
    }).then(function (j) {
      if (j.status !== 'OK') throw new Error(j.message || 'Operation failed.');
      return j.data || {};
    });
  }
  function run(button) {
    var kind = button.getAttribute('data-webauthn');
    var rd = button.getAttribute('data-rd') || undefined;
    var done = button.getAttribute('data-done');
    var error = document.querySelector('[data-webauthn-error]');
    if (error) error.textContent = '';
    button.disabled = true;
    var step;
    if (kind === 'assert') {
      step = api('GET', '/api/secondfactor/webauthn/assertion').then(function (d) {
        return navigator.credentials.get({ publicKey: requestOptions(d.publicKey) });
      }).then(function (c) {
        var body = credentialJson(c);
        if (rd) body.targetURL = rd;
        return api('POST', '/api/secondfactor/webauthn/assertion', body);
      });
    } else if (kind === 'passkey') {
      step = api('GET', '/api/firstfactor/passkey').then(function (d) {
        return navigator.credentials.get({ publicKey: requestOptions(d.publicKey) });
      }).then(function (c) {
        var remember = document.getElementById('remember_me');
        return api('POST', '/api/firstfactor/passkey', { response: credentialJson(c), targetURL: rd, keepMeLoggedIn: !!(remember && remember.checked) });
      });
    } else if (kind === 'register') {
      var passkey = button.getAttribute('data-passkey') === 'true';
      var description = document.getElementById('description');
      step = api('GET', '/api/secondfactor/webauthn/attestation' + (passkey ? '?passkey=true' : '')).then(function (d) {
        return navigator.credentials.create({ publicKey: creationOptions(d.publicKey) });
      }).then(function (c) {
        return api('POST', '/api/secondfactor/webauthn/attestation', { response: credentialJson(c), description: description ? description.value : '' });
      });
    } else {
      return;
    }
    step.then(function (data) {
      window.location.assign(done || data.redirect || (prefix + '/' + (rd ? '?rd=' + encodeURIComponent(rd) : '')));
    }).catch(function (e) {
      button.disabled = false;
      if (error) error.textContent = e && e.name === 'NotAllowedError' ? 'The security key did not answer, or the request was cancelled.' : String((e && e.message) || e);
    });
  }
  document.addEventListener('DOMContentLoaded', function () {
    var buttons = document.querySelectorAll('[data-webauthn]');
    for (var i = 0; i < buttons.length; i++) {
      var b = buttons[i];
      if (!window.PublicKeyCredential) { b.disabled = true; continue; }
      b.hidden = false;
      b.addEventListener('click', function (ev) { ev.preventDefault(); run(ev.currentTarget); });
    }
  });
})();
`
