// What every room page does first (the live pages and the refresh page): tells the server when
// this page is away, and lets the invitation form answer in place.
import { reportAway } from './away.js'
import { awayAfterMs, tab } from './context.js'
import { inviteInPlace } from './invite.js'

reportAway(tab, awayAfterMs)
inviteInPlace(document.getElementById('invite-form') as HTMLFormElement | null)
