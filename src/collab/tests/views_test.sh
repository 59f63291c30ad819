#!/usr/bin/env bash
# Collaborative views (VIEWING: UserSession -> CollaborativeView) end to end:
#   views_test.sh BUILD_DIR
# Viewers report viewPosition/camera/zoom with PUT /v1/views/{id}/viewers/me
# (throttled: one write per interval per viewer — 4 s here — the last state
# always lands),
# GET /v1/views/{id}/viewers lists them, DELETE leaves; the graph projection
# shows the VIEWING relationship with the same properties.
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")/../../.." && pwd)
work=$(mktemp -d /tmp/cnx-views-XXXXXX)
. "$src/src/collab/tests/serve_lib.sh"
trap cleanup EXIT
export CNX_COLLAB_VIEW_UPDATE_INTERVAL=4s  # one write per 4 s per viewer
start_serve

tok=$(js "$(api POST /v1/signup "" '{"tenantName":"t","email":"a@example.com","password":"correct horse battery","displayName":"A"}')" r.token)
me=$(js "$(api GET /v1/me "$tok")" "r.user?r.user.id:r.id")
program=$(js "$(api POST /v1/programs "$tok" '{"name":"p"}')" r.id)
project=$(js "$(api POST "/v1/programs/$program/projects" "$tok" "{\"programId\":\"$program\",\"name\":\"x\"}")" r.id)
view=$(js "$(api POST "/v1/projects/$project/views" "$tok" "{\"projectId\":\"$project\",\"name\":\"Map\",\"viewType\":\"graph\"}")" r.id)

# 1. First report is written at once.
p=$(api PUT "/v1/views/$view/viewers/me" "$tok" '{"viewPosition":{"x":1,"y":2},"camera":{"x":0,"y":0,"z":10},"zoom":1.5}')
expect "first update written" "$(status) $(js "$p" r.written)" "200 true"
session=$(js "$p" r.sessionId)
expect "viewer is the caller" "$(js "$p" r.userId)" "$me"
l=$(api GET "/v1/views/$view/viewers" "$tok")
expect "listed with its state" "$(js "$l" "[r.items.length,r.items[0].userId,r.items[0].zoom,r.items[0].camera.z,r.items[0].viewPosition.y]")" "[1,\"$me\",1.5,10,2]"
first_at=$(js "$l" r.items[0].lastUpdatedAt)

# 2. Updates inside the window are deferred (202); the last one lands. (The
# three requests run back to back, well inside the 4 s window.)
p2=$(api PUT "/v1/views/$view/viewers/me" "$tok" '{"viewPosition":{"x":5,"y":5},"zoom":2}'; echo; status)
p3=$(api PUT "/v1/views/$view/viewers/me" "$tok" '{"viewPosition":{"x":9,"y":9},"camera":{"z":4},"zoom":3}'; echo; status)
l=$(api GET "/v1/views/$view/viewers" "$tok")
expect "second update deferred" "$(echo "$p2" | tail -1) $(js "$(echo "$p2" | head -1)" r.written)" "202 false"
expect "third update deferred" "$(echo "$p3" | tail -1)" 202
expect "not written yet" "$(js "$l" "r.items[0].zoom")" 1.5
for _ in $(seq 1 100); do
  z=$(js "$(api GET "/v1/views/$view/viewers" "$tok")" "r.items[0].zoom")
  [ "$z" = 3 ] && break
  sleep 0.1
done
l=$(api GET "/v1/views/$view/viewers" "$tok")
expect "last deferred state landed" "$(js "$l" "[r.items.length,r.items[0].zoom,r.items[0].camera.z,r.items[0].viewPosition.x]")" "[1,3,4,9]"
expect "lastUpdatedAt moved" "$(js "$l" "r.items[0].lastUpdatedAt>'$first_at'")" true

view2=$(js "$(api POST "/v1/projects/$project/views" "$tok" "{\"projectId\":\"$project\",\"name\":\"Board\",\"viewType\":\"board\"}")" r.id)
api PUT "/v1/views/$view2/viewers/me" "$tok" '{"zoom":2}' >/dev/null
expect "one viewer may view two views" "$(status)" 200
pv=$(api GET "/v1/projects/$project/viewers" "$tok")
expect "who views which view" "$(js "$pv" "r.items.map(i=>i.viewName+':'+i.zoom+':'+(i.userId==='$me')).join(',')")" "Map:3:true,Board:2:true"
api GET "/v1/projects/$project/viewers" "" >/dev/null
expect "project viewers need a token" "$(status)" 401

# 3. A second user (project viewer role) views too; an outsider cannot.
uid=$(js "$(api POST /v1/users "$tok" '{"email":"v@example.com","password":"viewer password","role":"member"}')" r.id)
api POST "/v1/projects/$project/members" "$tok" "{\"projectId\":\"$project\",\"userId\":\"$uid\",\"role\":\"viewer\"}" >/dev/null
vtok=$(js "$(api POST /v1/sessions "" '{"email":"v@example.com","password":"viewer password"}')" r.token)
p=$(api PUT "/v1/views/$view/viewers/me" "$vtok" '{"zoom":0.5}')
expect "project viewer may view" "$(status)" 200
l=$(api GET "/v1/views/$view/viewers" "$vtok")
expect "two viewers" "$(js "$l" "r.items.map(i=>i.userId).sort().join(',')")" "$(printf '%s\n' "$me" "$uid" | sort | paste -sd,)"
otok=$(js "$(api POST /v1/signup "" '{"tenantName":"o","email":"o@example.com","password":"correct horse battery","displayName":"O"}')" r.token)
api PUT "/v1/views/$view/viewers/me" "$otok" '{"zoom":1}' >/dev/null
expect "another tenant gets 404" "$(status)" 404
api GET "/v1/views/$view/viewers" "" >/dev/null
expect "no token 401" "$(status)" 401

# 4. Validation.
api PUT "/v1/views/$view/viewers/me" "$tok" '{"zoom":-1}' >/dev/null
expect "bad zoom" "$(status)" 400
api PUT "/v1/views/$view/viewers/me" "$tok" '{"position":{}}' >/dev/null
expect "unknown field" "$(status)" 400
api PUT "/v1/views/$view/viewers/me" "$tok" '{"camera":[1,2]}' >/dev/null
expect "camera not an object" "$(status)" 400

# 5. The graph projection has the VIEWING relationship with the viewer's state.
for _ in $(seq 1 100); do
  g=$(api POST /v1/graph/subgraph "$tok" "{\"seedIds\":[\"$view\"],\"types\":[\"VIEWING\"],\"depth\":1}")
  v=$(js "$g" "(r.relationships||[]).filter(x=>x.type==='VIEWING'&&x.startId==='$session'&&x.endId==='$view').map(x=>x.properties.zoom).join(',')")
  [ "$v" = 3 ] && break
  sleep 0.1
done
expect "VIEWING relationship projected" "$v" 3

# 6. Leaving removes the viewer.
api DELETE "/v1/views/$view/viewers/me" "$vtok" >/dev/null
expect "leave" "$(status)" 204
expect "one viewer left" "$(js "$(api GET "/v1/views/$view/viewers" "$tok")" "r.items.map(i=>i.userId).join(',')")" "$me"
echo PASS
