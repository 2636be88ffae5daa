import fastifyStatic from '@fastify/static'
import view from '@fastify/view'
import { Eta } from 'eta'
import fp from 'fastify-plugin'
import { publicDir, viewsDir } from '../../conf/paths.js'

/** Eta views (escaped by default: <%= %>) and the static files under /public/. */
export default fp(
  async function views(app) {
    await app.register(view, {
      engine: { eta: new Eta({ views: viewsDir, cache: true, autoEscape: true }) },
      root: viewsDir,
      // What every page may say: the largest file one may send.
      defaultContext: { uploadMax: app.config.UPLOAD_MAX_BYTES },
    })
    await app.register(fastifyStatic, { root: publicDir, prefix: '/public/' })
  },
  { name: 'views' },
)
